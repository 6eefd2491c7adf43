"""Progress that the folder workflows yield, for a progress bar and the messages beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FolderStarted:
    """The folder's files are listed: `total` of them will be done."""

    total: int


@dataclass
class Note:
    """Something to tell the user about a file (a channel dropped, a file skipped, an estimated size)."""

    text: str


@dataclass
class FileDone:
    """One more file done (or skipped)."""

    name: str


@dataclass(frozen=True)
class RoundDone:
    """A training run was recorded as a round (``workflows.rounds.finish_round``): the ``Round``, for the
    dock's Rounds view, and the lines to tell (the test scores; `warning`: it scored worse than an earlier
    round, in plain words)."""

    round: Any
    lines: tuple[str, ...]
    warning: str = ""
