"""Classification's ground truth: a class per image, or per frame of a stack.

A table of the training images' frames: the class a person gave each one,
and the model's prediction with its probability. As in MIA, the number keys
assign a class to the selected frame and go on to the next one.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, Qt, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

NONE = -1  # a frame nobody has classified yet
COLUMNS = ["Image", "Frame", "Class", "Prediction", "Probability"]


class ClassTable(QWidget):
    """Frames' classes for training and their predictions; `changed` fires on every edit."""

    changed = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.truth: dict[str, list[int]] = {}  # image layer name -> class id per frame (NONE = none)
        self.stack: dict[str, bool] = {}
        self.predicted: dict[str, list[tuple[int, float]]] = {}  # -> (class id, probability) per frame
        # Images held out of training to validate on (all their frames), instead of a random split.
        self.validation: set[str] = set()
        # Images kept aside for good (all their frames): never trained on; every round is scored on them.
        self.test: set[str] = set()
        self.names_edit = QLineEdit("class 1, class 2")
        self.names_edit.setToolTip("The classes, separated by commas. Keys 1-9 assign them in this order.")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setMinimumHeight(160)
        self.table.setToolTip("Select a frame and press 1-9 to give it a class (the next frame is selected), "
                              "0 to clear it.")
        self.buttons = QHBoxLayout()
        self.clear_button = QPushButton("Clear class")
        self.remove_button = QPushButton("Remove selected")
        self.remove_button.setToolTip("Take the selected images out of the training set.")
        self.validation_button = QPushButton("Use for validation")
        self.validation_button.setToolTip(
            "Hold the selected images (all their frames) out of training to check the model on them (marked "
            "'(validation)'); press again to train on them. When images are marked, they are the validation set "
            "and the Validation split is not used.")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Classes"))
        row.addWidget(self.names_edit)
        lay.addLayout(row)
        lay.addWidget(self.table)
        lay.addLayout(self.buttons)
        extra = QHBoxLayout()
        extra.addWidget(self.clear_button)
        extra.addWidget(self.remove_button)
        lay.addLayout(extra)
        self.test_button = QPushButton("Use for test")
        self.test_button.setToolTip(
            "Keep the selected images (all their frames) aside for good (marked '(test)'): never trained on. At "
            "the end of every training the model is scored on them (Rounds, in the Training Data dock).")
        marks = QHBoxLayout()
        marks.addWidget(self.validation_button)
        marks.addWidget(self.test_button)
        lay.addLayout(marks)

        self.names_edit.editingFinished.connect(self._on_names)
        self.clear_button.clicked.connect(lambda: self.assign(NONE))
        self.remove_button.clicked.connect(self.remove_selected)
        self.table.itemSelectionChanged.connect(self._go_to_selected)
        # Number keys on the table, not window shortcuts: napari binds keys 1-9 to its own tools.
        self.table.installEventFilter(self)
        self._on_names()

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if obj is self.table and event.type() == QEvent.KeyPress and Qt.Key_0 <= event.key() <= Qt.Key_9:
            k = event.key() - Qt.Key_0
            self.assign(k - 1 if k else NONE)
            return True
        return super().eventFilter(obj, event)

    # -- classes ----------------------------------------------------------------
    def class_names(self) -> list[str]:
        return [n.strip() for n in self.names_edit.text().split(",") if n.strip()]

    def set_class_names(self, names: list[str]) -> None:
        self.names_edit.setText(", ".join(names))
        self._on_names()

    def _on_names(self):
        while self.buttons.count():
            w = self.buttons.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for k, name in enumerate(self.class_names()[:9]):
            b = QPushButton(f"{k + 1}: {name}")
            b.setToolTip(f"Give the selected frames the class '{name}' (key {k + 1}) and go to the next frame.")
            b.clicked.connect(lambda _=False, k=k: self.assign(k))
            self.buttons.addWidget(b)
        self._fill()

    # -- rows -------------------------------------------------------------------
    def add_image(self, name: str, frames: int, stack: bool) -> None:
        """Put an image's frames in the table (no class yet); an image already there keeps its classes."""
        if name not in self.truth or len(self.truth[name]) != frames:
            self.truth[name] = [NONE] * frames
        self.stack[name] = stack
        self._fill()

    def remove_images(self, names) -> None:
        for n in names:
            self.truth.pop(n, None)
            self.predicted.pop(n, None)
            self.validation.discard(n)
            self.test.discard(n)
        self._fill()

    def remove_selected(self) -> None:
        self.remove_images(self.selected_images())

    def selected_images(self) -> list[str]:
        """The images of the selected rows, in the table's order."""
        return list(dict.fromkeys(self._rows[r][0] for r in self._selected_rows()))

    def set_validation(self, names, on: bool) -> None:
        """Mark the images `names` as validation images (on) or training images again."""
        self.validation = (self.validation | set(names)) if on else (self.validation - set(names))
        self.test -= set(names) if on else set()
        self._fill()

    def set_test(self, names, on: bool) -> None:
        """Mark the images `names` as test images (on) or training images again."""
        self.test = (self.test | set(names)) if on else (self.test - set(names))
        self.validation -= set(names) if on else set()
        self._fill()

    def rows(self) -> list[tuple[str, int]]:
        return list(self._rows)

    def _fill(self):
        self._rows = [(name, i) for name, classes in self.truth.items() for i in range(len(classes))]
        names = self.class_names()
        selected = self._selected_rows()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._rows))
        for r, (name, i) in enumerate(self._rows):
            c = self.truth[name][i]
            pred = self.predicted.get(name, [])
            p = pred[i] if i < len(pred) else None
            shown = f"{name} (validation)" if name in self.validation else f"{name} (test)" if name in self.test \
                else name
            cells = [shown, str(i) if self.stack.get(name) else "", _name(names, c) if c != NONE else "",
                     _name(names, p[0]) if p else "", f"{p[1]:.2f}" if p else ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 3 and p and c != NONE and p[0] != c:  # a wrong prediction stands out
                    item.setForeground(QBrush(QColor("red")))
                self.table.setItem(r, col, item)
        for r in selected:
            if r < len(self._rows):
                self.table.selectRow(r)
        self.table.blockSignals(False)
        self.changed.emit()

    def _selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.table.selectedIndexes()})

    def select(self, name: str, frame: int = 0) -> None:
        if (name, frame) in self._rows:
            self.table.selectRow(self._rows.index((name, frame)))

    def assign(self, class_id: int, rows: list[int] | None = None) -> None:
        """Give the selected frames a class (NONE clears it) and select the frame after them."""
        rows = self._selected_rows() if rows is None else rows
        if not rows or class_id >= len(self.class_names()):
            return
        for r in rows:
            name, i = self._rows[r]
            self.truth[name][i] = class_id
        self._fill()
        nxt = rows[-1] + 1
        self.table.clearSelection()
        self.table.selectRow(min(nxt, len(self._rows) - 1))

    def _go_to_selected(self):
        rows = self._selected_rows()
        if not rows:
            return
        name, i = self._rows[rows[0]]
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            self.viewer.layers.selection.active = layer
            if self.stack.get(name):
                self.viewer.dims.set_current_step(0, i)

    # -- predictions --------------------------------------------------------------
    def set_prediction(self, name: str, results: list) -> None:
        """[(class id, probabilities)] per frame of an image (added to the table if new)."""
        if name not in self.truth:
            self.add_image(name, len(results), len(results) > 1 or self.stack.get(name, False))
        self.predicted[name] = [(int(c), float(p[int(c)])) for c, p in results]
        self._fill()

    def accept_predictions(self, name: str) -> int:
        """The predictions become the classes of the image's frames that have none; how many."""
        pred, truth = self.predicted.get(name, []), self.truth.get(name, [])
        n = 0
        for i, (c, _) in enumerate(pred):
            if i < len(truth) and truth[i] == NONE:
                truth[i] = c
                n += 1
        self._fill()
        return n

    def labelled(self) -> dict[str, list[int]]:
        """Images with at least one classified frame -> class id per frame (NONE for the others)."""
        return {n: list(c) for n, c in self.truth.items() if any(v != NONE for v in c)}

    def caption(self, name: str, frame: int) -> str:
        """'<class> (probability)' of a frame's prediction, or ''."""
        pred = self.predicted.get(name, [])
        if frame >= len(pred):
            return ""
        c, p = pred[frame]
        return f"{name}: {_name(self.class_names(), c)} ({p:.0%})"


def _name(names: list[str], c: int) -> str:
    return names[c] if 0 <= c < len(names) else f"class {c + 1}"
