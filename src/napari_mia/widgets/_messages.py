"""The docks' notifications (napari's toasts), readable at a glance.

A toast shows the start of its message on one line and cuts the rest at the right: a long layer name or
path near the start (64-character file stems are normal) left only "napari-mia:" or the first characters
of a name in sight. The toast gets each long name or path shortened in the middle, where stems that differ
only at their ends keep them; the dock's status line (which wraps) keeps the whole message.
"""

from __future__ import annotations

import re

from napari.utils import notifications

LONG = 32  # a word longer than this is shortened in a toast
KEEP = 13  # characters kept at each end of it


def toast_text(message: str) -> str:
    """`message` with each word (name, path) longer than LONG characters elided in the middle."""
    return re.sub(r"\S+", lambda m: m[0] if len(m[0]) <= LONG else f"{m[0][:KEEP]}…{m[0][-KEEP:]}", message)


def notify(message: str, level: str = "warning") -> None:
    """Show `message` as napari's warning (or "error", "info") toast, from napari-mia."""
    getattr(notifications, f"show_{level}")(f"napari-mia: {toast_text(message)}")
