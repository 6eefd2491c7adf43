"""The dock's Export (bioimage.io) button: asks where, exports and tests in a worker, reports in plain words.

The dock adds one button and calls ``export_dialog``; everything else lives here.
"""

from __future__ import annotations

import copy
import types
from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtWidgets import QFileDialog

from ..engine import export as engine_export
from ._session import TRAINING, explain


def _test_image(widget):
    """(array, rgb) of the image to cut the package's test tensors and cover from: the image chosen for
    prediction, else the first training image (as the model reads it: channels joined or moved last)."""
    names = [widget.predict_combo.value] + [p[0] for p in widget.pairs]
    for name in names:
        if name is not None and name in widget.viewer.layers:
            image = widget.image_for(name)
            return np.array(image.data), bool(image.rgb)
    return None, None


def export_dialog(widget, *_) -> None:
    path, _ = QFileDialog.getSaveFileName(widget, "Export model (bioimage.io)", "model.zip",
                                          "bioimage.io package (*.zip)")
    if path:
        export_model(widget, path)


def export_model(widget, path, blocking: bool = False, **options) -> bool:
    """Export the dock's model to `path` in a worker (the model test takes a minute); False if it cannot start.
    `options` go to ``export_package`` (formats, name, authors, license, cite)."""
    session = widget.session
    if not session.has_model:
        widget._notify("There is no model to export yet: train or load one first.")
        return False
    if session.state == TRAINING:
        widget._notify("Stop the training before exporting the model.")
        return False
    image, rgb = _test_image(widget)
    if image is None:
        widget._notify("Open an image like the training images (choose it under Predict image): the package "
                       "needs one for its test and cover.")
        return False
    widget.apply_kept_settings()  # the weights to use (best or last epoch) chosen now
    t = session.trainer
    # The weights Predict uses (the best epoch's, or the latest: Weights to use), and their statistics:
    # the best epoch's were settled when they were kept.
    best = t.best.applies(t.settings.train.keep)
    # A snapshot: the user may train again while the export runs.
    kept = t.kept_model()  # the best epoch's weights are already a copy
    snapshot = types.SimpleNamespace(model=kept if kept is not t.model else copy.deepcopy(kept),
                                     settings=t.settings.copy(),
                                     history=list(t.history), data_size=t.data_size, device=None)

    def run():
        if not best:
            t.settle_normalization(model=snapshot.model)  # as Predict does, on the copy
        return engine_export.export_package(snapshot, path, image, rgb=rgb, **options)

    def done(out):
        widget.status.value = f"Exported and tested: {Path(out).name}"

    def failed(error):
        widget._notify(explain(error))

    widget.status.value = "Exporting and testing the package (about a minute)..."
    if blocking:
        try:
            done(run())
        except Exception as e:  # noqa: BLE001 - shown to the user in plain words
            failed(e)
            return False
        return True
    worker = create_worker(run)
    worker.returned.connect(done)
    worker.errored.connect(failed)
    widget._export_worker = worker  # kept alive until it finishes
    worker.start()
    return True
