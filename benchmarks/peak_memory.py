"""Peak resident memory of this process above its level at the start (benchmarks and the bounded-memory test).

    with PeakMemory() as peak:
        ...
    peak.added_mb
"""

from __future__ import annotations

import threading


class PeakMemory:
    """Sampled every 5 ms: ru_maxrss only ever grows, so it cannot tell the peak of one part of a run."""

    def __enter__(self):
        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.base = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.added_mb = (self.peak - self.base) / 2**20
