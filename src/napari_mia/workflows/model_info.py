"""What a model file or a bioimage.io package holds, in a few lines: ``napari-mia info`` and the dock.

Read from the file's content alone (no network is built), so that it is quick and works on any file
napari-mia can read; a damaged file gets the plain message ``modelfile.load`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..engine import applications, modelfile
from ..engine.methods import methods_paragraph, reproducibility
from ..engine.record import TrainingRecord
from ..engine.rounds import RoundBook, rounds_csv_rows
from ..engine.starters import resolve


@dataclass
class ModelInfo:
    lines: list[str]
    rounds_columns: list[str] = field(default_factory=list)
    rounds_rows: list[list] = field(default_factory=list)
    methods: str = ""
    reproducibility: dict = field(default_factory=dict)
    card: list[str] = field(default_factory=list)


def describe(path: str | Path) -> ModelInfo:
    path = resolve(path)  # a starter's name is its installed file
    content = modelfile.load(path)
    s = content["settings"]
    m = s.model
    package = bool(content.get("package"))
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
    info.card = card_lines(content.get("card"))
    return info


def card_lines(card: dict | None) -> list[str]:
    """A starter's model card (benchmarks/make_starter.py writes it into the file) as lines to print."""
    if not card:
        return []
    lines = [f"{card.get('title', 'Model card')}"]
    for key, label in (("trained_on", "Trained on"), ("meant_for", "Meant for"), ("not_meant_for", "Not meant for"),
                       ("training", "Training"), ("licence", "Data licence"), ("citation", "Cite")):
        if card.get(key):
            lines.append(f"  {label}: {card[key]}")
    scores = card.get("held_out") or []
    if scores:
        lines.append("  Held out (never trained on), per image, diameter auto:")
        lines += [f"    {r['set']}: {r['images']} images, fg IoU {r['fg_iou']:.3f}, object F1 {r['object_f1']:.3f}"
                  for r in scores]
    return lines
