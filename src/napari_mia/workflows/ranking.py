"""What to label next: a folder's images (and the tiles of large ones) ranked by how unsure the model is
(``engine.uncertainty``), or in a random order, as ``napari-mia rank`` writes them and the dock lists them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.applications.base import write_csv
from ..engine.errors import MiaError
from ..engine.images import list_images
from ..engine.uncertainty import DEFAULT_MEASURE, Unsure, measure, random_order, ranked
from .events import FileDone, FolderStarted, Note
from .prediction import each_image

ORDERS = ("uncertainty", "random")
# What the dock offers first, and why: benchmarks/label_efficiency.py, docs/benchmarks.md ("Label next").
DEFAULT_ORDER = "random"
ORDER_WORDS = {
    "random": "At random, the default: in our measurement, labelling first the images the model was most unsure "
              "of did not beat images chosen at random by more than the noise of a training (docs/benchmarks.md).",
    "uncertainty": "Most uncertain first: the images whose predictions over 8 flips and rotations are least sure "
                   "(entropy). In our measurement this did not reliably beat choosing at random "
                   "(docs/benchmarks.md).",
}


@dataclass
class Ranking:
    """The images and tiles, first to label first, and the files skipped with why."""

    items: list[Unsure]
    by: str
    order: str = "uncertainty"
    skipped: list[tuple[str, str]] = field(default_factory=list)


def order_items(items: list[Unsure], order: str = "uncertainty", by: str = DEFAULT_MEASURE,
                seed: int = 0) -> list[Unsure]:
    """`items` most uncertain first (`order` "uncertainty"), or in a random order (images in a random order, each
    image's tiles by uncertainty after it)."""
    if order not in ORDERS:
        raise MiaError(f"The order is {' or '.join(ORDERS)}, not '{order}'.")
    if order == "uncertainty":
        return ranked(items, by)
    wholes = [u for u in items if u.tile is None]
    shuffled = random_order(wholes, seed)
    out = []
    for u in shuffled:
        out.append(u)
        out += ranked([t for t in items if t.tile is not None and t.name == u.name and t.frame == u.frame], by)
    return out


def rank_folder(predictor, images: Path, by: str = DEFAULT_MEASURE, order: str = "uncertainty", seed: int = 0,
                channel_axis: int | None = None) -> Iterator[FolderStarted | Note | FileDone | Ranking]:
    """Measure every image of `images` (and the tiles of large ones); ends with the ``Ranking``."""
    files = list_images(images)
    if not files:
        raise MiaError(f"No images found in {images}.")
    found: list[Unsure] = []
    skipped: list[tuple[str, str]] = []

    def one(f, image):
        found.extend(measure(predictor, image, f.name, by=by))

    yield FolderStarted(len(files))
    yield from each_image(files, predictor, one, skipped, channel_axis)
    if not found:
        raise MiaError("No image could be ranked (see the messages above).")
    yield Ranking(order_items(found, order, by, seed), by, order, skipped)


def _box(box) -> str:
    return "" if not box else f"{box[0]}:{box[2]},{box[1]}:{box[3]}"


def write_ranking(out: Path, ranking: Ranking) -> Path:
    """rank, name, frame, tile (rows y0:y1,columns x0:x1; empty: the whole image), the two measures, and the
    most uncertain region (same form)."""
    columns = ["rank", "name", "frame", "tile", "disagreement", "entropy", "most_uncertain_region"]
    rows = [[i + 1, u.name, "" if u.frame is None else u.frame, _box(u.tile), round(u.disagreement, 6),
             round(u.entropy, 6), _box(u.regions[0] if u.regions else None)] for i, u in enumerate(ranking.items)]
    return write_csv(out, columns, rows)
