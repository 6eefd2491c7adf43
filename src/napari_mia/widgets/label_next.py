"""Label next, in the Rounds view: which image (or tile of a large image) to label for the next round.

Suggest lists the viewer's images that the last round neither trained nor tested on, in a random order or most
uncertain first (``workflows.ranking``; which is the default follows the measurement in docs/benchmarks.md).
A click shows that image or tile and outlines its most uncertain regions in a Shapes layer of its own, which
the user can choose under Reviewed regions once they have corrected them.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtWidgets import QLabel, QListWidget, QVBoxLayout, QWidget

from ..engine.errors import MiaError
from ..workflows.ranking import DEFAULT_ORDER, ORDER_WORDS, order_items
from ._layout import wrap
from ._messages import notify

SHAPES = "Label next: uncertain regions"
MAX_SHOWN = 20
ORDER_CHOICES = [("At random", "random"), ("Most uncertain first", "uncertainty")]
NOTHING = "Suggest lists the images in the viewer that the model has not learned from, to label next."


class LabelNextView(QWidget):
    def __init__(self, viewer, session):
        super().__init__()
        self.viewer, self.session = viewer, session
        self.items: list = []  # the suggestions (engine.uncertainty.Unsure), first to label first
        self._outline_layer, self._outlined = None, []  # the Shapes layer of the last click, and what it held
        self.order = ComboBox(label="Suggest", choices=ORDER_CHOICES, value=DEFAULT_ORDER,
                              tooltip="At random, or the images the model is most unsure of first (it predicts "
                                      "each under 8 flips and rotations; the entropy of their mean).")
        self.suggest_button = PushButton(text="Suggest images",
                                         tooltip="List the images in the viewer that the model has not learned "
                                                 "from, in the chosen order.")
        row = Container(widgets=[self.order, self.suggest_button], layout="horizontal", labels=False)
        row.margins = (0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setMaximumHeight(120)
        self.list.setVisible(False)
        self.message = Label(value=f"{NOTHING} {ORDER_WORDS[DEFAULT_ORDER]}")
        wrap(self.message)
        title = QLabel("<b>Label next</b>: what to label for the next round")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        for w in (title, row.native, self.list, self.message.native):
            lay.addWidget(w)
        self.suggest_button.changed.connect(lambda *_: self.suggest())
        self.order.changed.connect(self._reorder)
        self.list.currentRowChanged.connect(self.show_item)

    # -- suggestions -----------------------------------------------------------------------------
    def candidates(self) -> tuple[list[tuple[str, object, bool]], list[str]]:
        """((name, data, rgb) of the image layers the last round did not learn or test on; the names of the
        multiscale ones, which are not measured). The data are read (np.asarray) in the worker: a lazy layer
        loads there, not on the main thread."""
        from napari.layers import Image

        out, multiscale = [], []
        for layer in self.viewer.layers:
            if isinstance(layer, Image) and layer.name not in self.session.labelled_names:
                if layer.multiscale:
                    multiscale.append(layer.name)
                else:
                    out.append((layer.name, layer.data, bool(layer.rgb)))
        return out, multiscale

    def suggest(self) -> bool:
        """Measure the candidates in a worker, then list them; True if it started."""
        trainer = self.session.trainer
        if trainer is None:
            notify("There is no model yet: train or load one first.")
            return False
        if self.session.busy:
            notify("Please wait for the training or prediction to finish (or stop it) first.")
            return False
        candidates, multiscale = self.candidates()
        if multiscale:
            notify(f"Not suggested (multiscale images are not measured): {', '.join(multiscale)}", "warning")
        if not candidates:
            self.message.value = ("Every image in the viewer is in the training or test set: open more images to "
                                  "choose the next ones from.")
            return False
        model = trainer.trained_model()  # idle: no training is changing the weights

        def work():
            from ..engine.uncertainty import measure
            from ..workflows.prediction import predictor_for_model

            predictor = predictor_for_model(model)
            found, skipped = [], []
            for name, data, rgb in candidates:
                try:
                    found += measure(predictor, np.asarray(data), name, rgb)
                except MiaError as e:
                    skipped.append(f"{name}: {e}")
            return found, skipped

        def done(result):
            found, skipped = result
            self._all = found
            self._reorder()
            if skipped:
                notify("Not suggested: " + "; ".join(skipped), "warning")

        if not self.session.run_task(work, done):
            return False
        self.message.value = f"Measuring how unsure the model is about {len(candidates)} image(s) ..."
        return True

    def _reorder(self, *_) -> None:
        found = getattr(self, "_all", None)
        if found is None:  # nothing suggested yet
            return
        if not found:
            self.items = []
            self.list.clear()
            self.list.setVisible(False)
            self.message.value = "No image could be measured (see the warning): nothing to suggest."
            return
        rounds = self.session.trainer.rounds if self.session.trainer is not None else None
        seed = len(rounds) if rounds is not None else 0  # a new random order each round
        self.items = order_items(found, self.order.value, seed=seed)
        self.list.blockSignals(True)
        self.list.clear()
        for i, u in enumerate(self.items[:MAX_SHOWN]):
            where = f" ({u.where})" if u.where else ""
            self.list.addItem(f"{i + 1}. {u.name}{where}   entropy {u.score():.2f}")
        self.list.blockSignals(False)
        self.list.setVisible(True)
        more = f" (the first {MAX_SHOWN} of {len(self.items)})" if len(self.items) > MAX_SHOWN else ""
        self.message.value = (f"{ORDER_WORDS[self.order.value]} Click one to show it{more}; its most uncertain "
                              f"regions are outlined in the layer '{SHAPES}'.")

    # -- showing one ----------------------------------------------------------------------------
    def show_item(self, row: int) -> None:
        """Show suggestion `row`: its image alone among the images (the others hidden, not changed), its frame,
        zoomed to its tile, and its most uncertain regions outlined."""
        if not 0 <= row < len(self.items):
            return
        from napari.layers import Image

        u = self.items[row]
        if u.name not in self.viewer.layers:
            notify(f"The image '{u.name}' is no longer in the viewer.")
            return
        layer = self.viewer.layers[u.name]
        for other in self.viewer.layers:
            if isinstance(other, Image) and other is not layer:
                other.visible = False
        layer.visible = True
        self.viewer.layers.selection.active = layer
        if u.frame is not None:
            self.viewer.dims.set_current_step(0, u.frame)
        self._outline(layer, u)
        self._zoom(layer, u)

    def _outline(self, layer, u) -> None:
        boxes = [np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float) for y0, x0, y1, x1 in u.regions]
        if u.frame is not None:
            boxes = [np.column_stack([np.full(4, u.frame, float), b]) for b in boxes]
        # The last outline is replaced, unless the user has changed it (a reviewed region, say): then it stays
        # and the new one is a layer of its own.
        last = self._outline_layer
        if last is not None and last in self.viewer.layers and _same_shapes(last.data, self._outlined):
            self.viewer.layers.remove(last)
        self._outline_layer, self._outlined = None, []
        if boxes:
            dims = len(boxes[0][0])
            self._outline_layer = self.viewer.add_shapes(
                boxes, shape_type="rectangle", name=SHAPES, edge_color="yellow", face_color="transparent",
                edge_width=3, scale=layer.scale[-dims:], translate=layer.translate[-dims:])
            self._outlined = [b.copy() for b in self._outline_layer.data]
            self.viewer.layers.selection.active = layer

    def _zoom(self, layer, u) -> None:
        h, w = layer.data.shape[-3:-1] if layer.rgb else layer.data.shape[-2:]
        self.viewer.reset_view()
        if u.tile is None:
            return
        y0, x0, y1, x1 = u.tile
        sy, sx = layer.scale[-2:]
        ty, tx = layer.translate[-2:]
        self.viewer.camera.center = (ty + sy * (y0 + y1) / 2, tx + sx * (x0 + x1) / 2)
        self.viewer.camera.zoom = self.viewer.camera.zoom * 0.95 * min(h / (y1 - y0), w / (x1 - x0))


def _same_shapes(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y) for x, y in zip(a, b))
