"""How long the user spends editing the training set between rounds: the "human minutes" of a round.

Counted from the layers' own edit events (a Labels layer's paint and data events, a Points or Shapes
layer's data events), per layer, with the time between two edits counted only when they are at most a
minute apart (``workflows.rounds.active_minutes``): reading a paper between two strokes is not annotating.
"""

from __future__ import annotations

import time
from collections import defaultdict

from ..workflows.rounds import active_minutes
from ._layers import is_kind

GAP_SECONDS = 60.0
EDITED = {"Labels": ("paint", "data"), "Points": ("data",), "Shapes": ("data",)}


class AnnotationClock:
    """The times of every edit of the viewer's Labels, Points and Shapes layers since the last round."""

    def __init__(self, viewer, now=time.monotonic):
        self.viewer, self.now = viewer, now
        self.times: dict[str, list[float]] = defaultdict(list)
        self._watched: dict[int, list] = {}
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in viewer.layers:
            self._watch(layer)

    def _watch(self, layer) -> None:
        kind = next((k for k in EDITED if is_kind(layer, k)), None)
        if kind is None or id(layer) in self._watched:
            return
        links = []
        for name in EDITED[kind]:
            emitter = getattr(layer.events, name, None)
            if emitter is None:
                continue

            def edited(event, layer=layer):
                self.times[layer.name].append(self.now())

            emitter.connect(edited)
            links.append((emitter, edited))
        self._watched[id(layer)] = links

    def _on_inserted(self, event) -> None:
        self._watch(event.value)

    def _on_removed(self, event) -> None:
        for emitter, call in self._watched.pop(id(event.value), []):
            emitter.disconnect(call)

    def minutes(self, layers) -> float:
        """Active editing minutes of the named layers since the last ``new_round``."""
        return sum(active_minutes(self.times.get(name, ()), GAP_SECONDS) for name in set(layers))

    def new_round(self) -> None:
        """A round started: editing counts towards the next one from now."""
        self.times.clear()

    def close(self) -> None:
        self.viewer.layers.events.inserted.disconnect(self._on_inserted)
        self.viewer.layers.events.removed.disconnect(self._on_removed)
        for links in self._watched.values():
            for emitter, call in links:
                emitter.disconnect(call)
        self._watched.clear()
