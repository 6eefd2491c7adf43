"""The Training Data dock's plotting library, imported before the dock opens: the session starts it beside
torch at the first Start, and the plot (widgets/plot.py) finds it imported."""

from __future__ import annotations

import sys
import threading


def preload() -> None:
    """Import matplotlib's parts the plot uses in a thread of its own (at Start, while torch loads), so that
    the Training Data dock finds them imported."""
    if "matplotlib.backends.backend_agg" not in sys.modules:
        threading.Thread(target=_import_matplotlib, name="napari-mia-plot-import", daemon=True).start()


def _import_matplotlib():
    # matplotlib: seconds to import, so in a thread of its own, never while the dock opens
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.ticker  # noqa: F401
