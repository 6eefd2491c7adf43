"""``napari-mia rank``: what to label next. A folder's images, and the tiles of large ones, ranked by how
unsure the model is about them (``workflows.ranking``), or in a random order."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.uncertainty import DEFAULT_MEASURE, MEASURES, RANK_TILE
from ..workflows.ranking import ORDERS, rank_folder, write_ranking
from .options import add_model_option, add_predictor_run_options, predictor_for
from .output import follow, skipped_exit

RANK_EPILOG = f"""\
Each image is predicted under the 8 flips and 90-degree rotations (test-time
augmentation, so --tta is always on); where the 8 answers disagree, the model
is unsure. Images larger than {int(1.5 * RANK_TILE)} px are also ranked by tiles of about
{RANK_TILE} px. Writes --out (rank, name, frame, tile as rows y0:y1,columns x0:x1,
disagreement, entropy, and the most uncertain region) and prints the first rows.

Whether labelling the most uncertain images first beats labelling images
chosen at random was measured (docs/benchmarks.md): not reliably, so the dock's
Label next suggests at random by default; --order random lists them in a
random order here too.

examples:
  napari-mia rank --model nuclei.pt --images unlabelled/ --out ranking.csv
  napari-mia rank --model nuclei --images unlabelled/ --by entropy \\
      --out ranking.csv
  napari-mia rank --model cells.pt --images unlabelled/ --order random \\
      --seed 1 --out ranking.csv
"""


def add_parser(sub) -> argparse.ArgumentParser:
    r = sub.add_parser("rank", help="what to label next: images and tiles ranked by how unsure the model is",
                       epilog=RANK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_option(r)
    r.add_argument("--images", required=True, type=Path, help="folder of images to choose from")
    r.add_argument("--out", type=Path, default=Path("ranking.csv"), help="CSV of the ranking (default: ranking.csv)")
    r.add_argument("--by", choices=list(MEASURES), default=DEFAULT_MEASURE,
                   help=f"disagreement: how much the 8 views' predictions differ; entropy: how evenly the mean "
                        f"prediction spreads over the classes (default: {DEFAULT_MEASURE})")
    r.add_argument("--order", choices=list(ORDERS), default="uncertainty",
                   help="uncertainty: most uncertain first; random: a random order (default: uncertainty)")
    r.add_argument("--seed", type=int, default=0, help="with --order random: the order's seed (default: 0)")
    r.add_argument("--show", type=int, default=10, metavar="N", help="rows to print (default: 10)")
    add_predictor_run_options(r)
    return r


def run(a: argparse.Namespace) -> int:
    _, predictor = predictor_for(a)
    ranking = follow(rank_folder(predictor, a.images, a.by, a.order, a.seed, a.channel_axis), a.quiet)
    print(f"rank  {a.by:>12}  image")
    for i, u in enumerate(ranking.items[:a.show]):
        print(f"{i + 1:4d}  {u.score(a.by):12.4f}  {u.name}{f' ({u.where})' if u.where else ''}")
    out = write_ranking(a.out, ranking)
    first = ranking.items[0]
    said = "most uncertain" if a.order == "uncertainty" else "first in a random order"
    print(f"Label next: {first.name}{f' ({first.where})' if first.where else ''}, {said}.")
    print(f"Wrote the ranking of {len(ranking.items)} images and tiles to {out}")
    return skipped_exit(ranking.skipped)
