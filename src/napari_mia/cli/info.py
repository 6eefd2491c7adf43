"""``napari-mia info``: what a model file or a bioimage.io package holds, in a few lines; its rounds, the
methods paragraph written from them, and (``--reproducibility FILE``) the reproducibility record as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.errors import OutputError
from ..workflows.model_info import describe

INFO_EPILOG = """\
examples:
  napari-mia info --model nuclei.pt
  napari-mia info --model nuclei                  (the starter that ships with napari-mia: its model card)
  napari-mia info --model nuclei.zip              (a bioimage.io package exported by napari-mia)
  napari-mia info --model nuclei.pt --reproducibility nuclei_reproducibility.json
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="what a model file or package holds: application, network, training, rounds, "
                                    "a methods paragraph", epilog=INFO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path,
                   help="model file (.pt), bioimage.io package (.zip), or nuclei (the starter that ships with "
                        "napari-mia)")
    p.add_argument("--reproducibility", type=Path, metavar="FILE",
                   help="write the reproducibility record (package versions, seeds, settings, a hash of every "
                        "image and target per round) to FILE as JSON")
    return p


def run(a: argparse.Namespace) -> int:
    info = describe(a.model)
    for line in info.lines:
        print(line)
    if info.card:
        print()
        print("\n".join(info.card))
    if info.rounds_rows:
        columns = info.rounds_columns
        widths = [max(len(str(c)), *(len(str(r[i])) for r in info.rounds_rows)) for i, c in enumerate(columns)]
        print()
        print("  ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
        for r in info.rounds_rows:
            print("  ".join(f"{v!s:>{w}}" for v, w in zip(r, widths)))
    if info.methods:
        print()
        print("Methods:")
        print(info.methods)
    if a.reproducibility:
        if not info.reproducibility:
            print(f"{a.model.name} records no rounds: there is no reproducibility record to write.")
            return 0
        try:
            a.reproducibility.write_text(json.dumps(info.reproducibility, indent=1, default=str))
        except OSError as e:
            raise OutputError(f"Cannot write {a.reproducibility}: {e.strerror}.") from e
        print(f"Wrote the reproducibility record to {a.reproducibility}")
    return 0
