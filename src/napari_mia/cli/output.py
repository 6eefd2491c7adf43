"""What the commands print: progress bars, messages, tables, errors and the exit code for skipped files.

Results go to stdout, everything said along the way to stderr.
"""

from __future__ import annotations

import sys

from ..workflows.events import FileDone, FolderStarted, Note

# The exit code of an error, and of a folder where some files were skipped.
ERROR = 2


def progress_bar(total: int | None, quiet: bool):
    """A tqdm bar on stderr, or None with --quiet."""
    if quiet:
        return None
    from tqdm import tqdm  # lazy: tqdm is only needed once a command runs

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def write(bar, text: str) -> None:
    """A line on stderr that does not break the progress bar."""
    if bar is not None:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def say(text: str) -> None:
    """A message on stderr."""
    print(text, file=sys.stderr)


def error(text: str) -> int:
    """An error as one line on stderr; returns the exit code."""
    print(f"napari-mia: error: {text}", file=sys.stderr)
    return ERROR


def close(bar) -> None:
    if bar is not None:
        bar.close()


def skipped_exit(skipped: list[tuple[str, str]]) -> int:
    """0 if every image was done; otherwise list the skipped ones and return the error code."""
    if not skipped:
        return 0
    print(f"napari-mia: error: {len(skipped)} image(s) were skipped, the others were predicted:", file=sys.stderr)
    for name, why in skipped:
        print(f"  {name}: {why}", file=sys.stderr)
    return ERROR


def _cell(v, width: int) -> str:
    if isinstance(v, float):
        return f"{v:>{width}.3f}"
    return f"{'' if v is None else v!s:>{width}}"


def print_table(rows: list[dict], columns: list[str], width: int = 8) -> None:
    """Rows of scores under their columns' names, the first column (the image's name) left-aligned."""
    first = max(len(r[columns[0]]) for r in rows)
    print(f"{'image':<{first}}  " + "  ".join(f"{c:>{width}}" for c in columns[1:]))
    for r in rows:
        print(f"{r[columns[0]]:<{first}}  " + "  ".join(_cell(r.get(c), width) for c in columns[1:]))


def follow(steps, quiet: bool):
    """Show a folder workflow's progress (a bar, its messages); returns its report, the last thing it yields."""
    bar, report = None, None
    try:
        for step in steps:
            if isinstance(step, FolderStarted):
                bar = progress_bar(step.total, quiet)
            elif isinstance(step, Note):
                write(bar, step.text)
            elif isinstance(step, FileDone):
                if bar is not None:
                    bar.update(1)
            else:
                report = step
    finally:
        close(bar)
    return report
