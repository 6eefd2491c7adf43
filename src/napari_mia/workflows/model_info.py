"""What a model file or a bioimage.io package holds, in a few lines: ``napari-mia info`` and the dock.

Read from the file's content alone (no network is built), so that it is quick and works on any file
napari-mia can read; a damaged file gets the plain message ``modelfile.load`` gives.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import applications, modelfile
from ..engine.methods import methods_paragraph, reproducibility
from ..engine.record import TrainingRecord
from ..engine.rounds import RoundBook, rounds_csv_rows


@dataclass
class ModelInfo:
    lines: list[str]
    rounds_columns: list[str] = field(default_factory=list)
    rounds_rows: list[list] = field(default_factory=list)
    methods: str = ""
    reproducibility: dict = field(default_factory=dict)


def describe(path: str | Path) -> ModelInfo:
    path = Path(path)
    content = modelfile.load(path)
    s = content["settings"]
    m = s.model
    package = _is_package(path)
    kind = "a bioimage.io package exported by napari-mia" if package else "a napari-mia model file"
    lines = [f"{path.name}: {kind} ({path.stat().st_size / 1e6:.1f} MB)"]
    mode = f" ({m.label_mode})" if m.task == "segmentation" else ""
    lines.append(f"Application: {m.task}{mode}; classes: {', '.join(m.class_names)}")
    start = "ImageNet-pretrained" if m.pretrained else "trained from scratch"
    lines.append(f"Network: {m.architecture} with a {m.encoder} encoder ({start}), {m.channels} input "
                 f"channel{'s' if m.channels != 1 else ''}")
    app = applications.for_settings(s)
    diameter = app.model_diameter(s)
    if diameter:
        lines.append(f"Objects: about {diameter:.1f} px across, as the model learned them (prediction rescales "
                     "images to it with diameter auto)")
    data = content.get("data") or {}
    if data:
        lines.append(f"Trained on: {data.get('train_images', '?')} images, {data.get('validation_images', '?')} for "
                     "validation")
    record = TrainingRecord.from_history(content.get("history") or [])
    best = record.best_epoch
    if best is not None:
        score = best.val_objects if best.val_objects is not None else best.val_metric
        what = "object F1" if best.val_objects is not None else s.train.metric
        lines.append(f"Kept weights: epoch {best.epoch} of {len(record.epochs)}, validation {what} {score:.3f}")
    book = RoundBook.from_file(content, content["state_dict"])
    info = ModelInfo(lines)
    if book.rounds:
        info.rounds_columns, info.rounds_rows = rounds_csv_rows(book.rounds)
        kept = "their weights are not in a package" if package else \
            f"earlier rounds' weights add {book.size_bytes() / 1e6:.1f} MB to the file"
        lines.append(f"Rounds: {len(book.rounds)} ({kept})")
        info.methods = content.get("methods") or methods_paragraph(s, book.rounds, app.headline_scores)
        info.reproducibility = content.get("reproducibility") or reproducibility(book.rounds)
    else:
        lines.append("Rounds: none recorded (trained before napari-mia kept rounds, or exported without them)")
    return info


def _is_package(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:  # modelfile.load has read it: a zip
        return any(n in modelfile.PACKAGE_FILES for n in z.namelist())
