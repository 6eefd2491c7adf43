"""The README and cover of an exported bioimage.io package (``export.export_package``).

What the outputs mean and how the prediction is drawn is the task's (``export_parts``: ``what``,
``output_readme``, ``cover``); the input, training and weights sections are shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from . import applications, export_parts
from .settings import Settings


def record_summary(history: list[dict], data_size: dict | None) -> dict:
    scored = [h for h in history if h.get("val_metric") is not None]
    best = max(scored, key=lambda h: h["val_metric"]) if scored else None
    last = history[-1] if history else None
    return {"epochs": len(history), "data": data_size or {}, "last_epoch": last, "best_epoch": best}


def readme(name: str, s: Settings, summary: dict, formats: Sequence[str], step: int, methods: str = "") -> str:
    m, d, t = s.model, s.data, s.train
    app, parts = applications.get(m.task), export_parts.for_task(m.task)
    what = parts.what(s)
    lines = [f"# {name}", "", f"A napari-mia model ({m.task}) trained in napari-mia: it finds {what}.", "",
             "## Input", "",
             f"- {m.channels} channel(s), 2D images; axes batch, channel, y, x; float32 (raw values).",
             f"- Normalisation (done by the package's preprocessing): {d.normalization}"
             + (" (1st to 99.8th percentile to 0-1, per image and channel)"
                if d.normalization == "percentile" else "") + "."]
    if app.whole_image:
        lines.append(f"- Any size: the network resizes each whole image to {d.patch_height} x {d.patch_width} "
                     "pixels, as in training.")
    else:
        lines.append(f"- Height and width: multiples of {step} pixels (tiles of any such size).")
        if d.downscale != 1:
            lines.append(f"- Down scaling {d.downscale:g} is built into the network: give images at their original "
                         "resolution; the output has the input's size.")
    lines += ["", "## Output", ""]
    lines += parts.output_readme(s, parts.output_channel_names(s))
    lines += ["", "## Training", "",
              f"- Network: {'classifier' if app.whole_image else m.architecture} with encoder {m.encoder}"
              f"{' (ImageNet start)' if m.pretrained else ''}, segmentation-models-pytorch.",
              f"- {summary['epochs']} epoch(s) recorded; batch size {t.batch_size}, learning rate {t.learning_rate:g}, "
              f"optimizer {t.optimizer}, loss {t.loss}, patch {d.patch_width} x {d.patch_height}."]
    data = summary["data"]
    if data:
        lines.append(f"- Data: {data.get('train_images', '?')} training image(s), "
                     f"{data.get('validation_images', '?')} held out for validation.")
    best, last = summary["best_epoch"], summary["last_epoch"]
    if best:
        lines.append(f"- Validation {t.metric}: {best['val_metric']:.4f} at epoch {best['epoch']} (best); "
                     f"last epoch {last['epoch']}: {last['val_metric'] if last['val_metric'] is None else round(last['val_metric'], 4)}.")
    elif last:
        lines.append(f"- No validation images; last training {t.metric}: {last.get('train_metric', float('nan')):.4f}.")
    if methods:
        lines += ["", "## Methods", "", "A paragraph for a paper's methods, written by napari-mia from this model's "
                  "rounds of annotation and training (its reproducibility record, with package versions, settings "
                  "and a hash of every image used, is in `config.napari_mia.reproducibility` of rdf.yaml):", "",
                  methods]
    lines += ["", "## Weights", "", f"Formats: {', '.join(formats)}. Each was tested with bioimageio.core's model "
              "test (on the CPU) before the package was written.", "",
              "## napari-mia", "",
              "Load this package in napari-mia (Load Model, or `napari-mia predict --model THIS.zip`) to predict "
              "with its own post-processing, or to continue training. All its settings are in `config.napari_mia` "
              "of rdf.yaml.", ""]
    return "\n".join(lines)


def cover(path: Path, image: np.ndarray, shown: np.ndarray, s: Settings, result) -> None:
    """Image and prediction side by side (PNG, 2:1)."""
    import matplotlib  # lazy: seconds to import, and only an export draws

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # lazy too, and after the backend is chosen

    fig = Figure(figsize=(8, 4), dpi=80)
    a, b = fig.subplots(1, 2)
    img = image[..., 0] if image.shape[-1] == 1 else np.clip(image[..., :3], 0, 1)
    for ax in (a, b):
        ax.imshow(img, cmap="gray")
        ax.set_axis_off()
    a.set_title("image")
    export_parts.for_task(s.model.task).cover(b, result, shown, s)
    fig.tight_layout()
    fig.savefig(path)


