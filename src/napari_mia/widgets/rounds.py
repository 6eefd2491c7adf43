"""The Rounds view of the Training Data dock: did the last round of labelling help?

Every training run is a round (workflows.rounds). The view shows them in a table (what was labelled, the
human and training minutes, the validation and test scores), plots the test score against the labelled
objects and against the human minutes, says in plain words when a round scored worse on the test images
than an earlier one, and restores any earlier round's weights (Restore round).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QSizePolicy, QTableWidget, QTableWidgetItem,
                            QVBoxLayout, QWidget)

from ..workflows.curve import forecast_from_rounds
from ..workflows.events import RoundDone
from ._layout import wrap
from ._messages import notify
from ._session import IDLE

NO_ROUNDS = ("No round yet: every training is a round. Mark pairs with Use for test to score every round on "
             "images kept aside.")
# The dock column is narrow: the training minutes, device and validation score are in each row's tooltip.
COLUMNS = ("Round", "Images", "Objects", "Corrected", "Human\nminutes", "Test")
COLUMN_TIPS = ("", "Training and validation images", "Labelled objects (training and validation)",
               "Corrected predictions added since the round before", "Active minutes spent editing the training "
               "set's layers since the round before (pauses over a minute do not count)", "")
MAX_ROWS_SHOWN = 5  # more rounds scroll
PLOT_HEIGHT = 140


class RoundsView(QWidget):
    """The rounds of the session's model, with Restore round."""

    def __init__(self, session, theme_colours=None):
        super().__init__()
        self.session = session
        self._theme_colours = theme_colours
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Equal columns over the width there is: never wider than the dock's column.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for j, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(j).setToolTip(tip)
        # Drawn at the width the dock gives it (``_draw``), so the text stays readable; a fixed height.
        self.plot = QLabel("")
        self.plot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot.setFixedHeight(PLOT_HEIGHT)
        self.plot.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.plot.setVisible(False)
        self.title = QLabel("<b>Rounds</b>: every training, scored on the test pairs")
        self.message = Label(value=NO_ROUNDS)
        wrap(self.message)
        # Will more labels help? The learning curve through the rounds (workflows.curve), in words.
        self.forecast = Label(value="")
        wrap(self.forecast)
        self.forecast.visible = False
        self.round_combo = ComboBox(label="Round", choices=[], tooltip="The round whose model to bring back.")
        self.restore_button = PushButton(
            text="Restore round", tooltip="Bring back the chosen round's weights: predictions are that round's "
                                          "again, and the next Start trains on from them.")
        row = Container(widgets=[self.round_combo, self.restore_button], layout="horizontal", labels=False)
        row.margins = (0, 0, 0, 0)
        wrap(self.title)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.table)
        lay.addWidget(self.plot)
        lay.addWidget(self.forecast.native)
        lay.addWidget(self.message.native)
        lay.addWidget(row.native)
        self.restore_button.changed.connect(lambda *_: self.restore(self.round_combo.value))
        self.round_combo.changed.connect(self._name_button)
        self._shown = None
        self.refresh()

    # -- what is shown ------------------------------------------------------------------------
    @property
    def book(self):
        trainer = self.session.trainer
        return None if trainer is None else trainer.rounds

    def on_event(self, ev) -> None:
        if isinstance(ev, RoundDone):
            self.refresh(force=True)
            self.message.value = "\n".join(ev.lines) if ev.lines else f"Round {ev.round.number} recorded."
            if ev.warning:
                notify(ev.warning, "warning")

    def refresh(self, *_, force: bool = False) -> None:
        book = self.book
        rounds = list(book.rounds) if book is not None else []
        key = (id(book), len(rounds), rounds[-1].finished if rounds else None)
        if key == self._shown and not force:
            self.restore_button.enabled = bool(self.round_combo.choices) and self.session.state == IDLE
            return
        self._shown = key
        self.table.setRowCount(len(rounds))
        for i, r in enumerate(rounds):
            test = r.test.get(self._headline()) if r.test else None
            cells = (r.number, r.images + r.validation_images, r.objects, r.corrected, r.human_minutes, test)
            validation = "" if r.validation is None else f", best validation score {r.validation:.3f}"
            tip = (f"Round {r.number} ({r.finished}): {r.images} training and {r.validation_images} validation "
                   f"images; {r.seconds / 60:.1f} training minutes, {r.steps} steps on {r.device}{validation}.")
            for j, v in enumerate(cells):
                text = "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
                item = QTableWidgetItem(text)
                item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                item.setToolTip(tip)
                self.table.setItem(i, j, item)
        self.table.horizontalHeaderItem(len(COLUMNS) - 1).setToolTip(f"The {self.headline_words()}, the mean over "
                                                                      "the test images")
        rows = min(max(len(rounds), 1), MAX_ROWS_SHOWN)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows * self.table.verticalHeader()
                                  .defaultSectionSize() + 4)
        restorable = [r.number for i, r in enumerate(rounds) if book.has_weights(i)] if book is not None else []
        self.round_combo.choices = restorable
        if restorable:
            self.round_combo.value = restorable[-1]
        self._name_button()
        self.restore_button.enabled = bool(restorable) and self.session.state == IDLE
        if not rounds:
            self.message.value = NO_ROUNDS
        self._draw(rounds)

    def _name_button(self, *_) -> None:
        n = self.round_combo.value
        self.restore_button.text = "Restore round" if n is None else f"Restore round {n}"

    def resizeEvent(self, event):  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.plot.isVisible() and abs(self.plot.width() - getattr(self, "_drawn_width", 0)) > 40:
            self._draw(list(self.book.rounds) if self.book is not None else [])  # at the new width

    def _headline(self) -> str:
        trainer = self.session.trainer
        if trainer is None:
            return "object_f1"
        return trainer.app.headline_scores[-1][0]

    def headline_words(self) -> str:
        trainer = self.session.trainer
        return "test score" if trainer is None else f"test {trainer.app.headline_scores[-1][1]}"

    def _draw(self, rounds) -> None:
        """The test score against the labelled objects and against the human minutes (once per round: a
        small figure, drawn here)."""
        key = self._headline()
        scored = [r for r in rounds if r.test.get(key) is not None]
        # Objects where every round counted them (not class-mode segmentation, not classification), else images.
        objects = bool(scored) and all(r.objects for r in scored)
        unit = "labelled objects" if objects else "labelled images"
        fit, words = forecast_from_rounds(rounds, key, self.headline_words().removeprefix("test "), unit, objects)
        self.forecast.value = words
        self.forecast.visible = bool(scored)
        if not scored:
            self.plot.clear()
            self.plot.setVisible(False)
            return
        # lazy: seconds to import; by the end of a round the training worker has imported it (preload)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        colours = self._theme_colours() if self._theme_colours else {}
        fg, bg = colours.get("text", "black"), colours.get("background", "white")
        width = max(self.plot.width(), 280)
        self._drawn_width = width
        fig = Figure(figsize=(width / 100, PLOT_HEIGHT / 100), dpi=100, tight_layout=True, facecolor=bg)
        canvas = FigureCanvasAgg(fig)
        score = [r.test[key] for r in scored]
        panels = [(unit, [r.objects if objects else r.images + r.validation_images for r in scored])]
        if any(r.human_minutes for r in scored):  # no edits recorded (e.g. scripted labels): no second panel
            panels.append(("human minutes, in all", list(np.cumsum([r.human_minutes or 0 for r in scored]))))
        for k, (xlabel, xs) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), k + 1, facecolor=bg)
            ax.plot(xs, score, marker="o", color=colours.get("objects", "tab:purple"))
            if k == 0 and fit is not None:  # the fitted curve, dashed on to twice the labels, and the forecast
                grid = np.linspace(min(xs), 2 * fit.labels, 60)
                ax.plot(grid, fit(grid), "--", lw=1, color=colours.get("best", "tab:green"))
                low, high = (fit.low, fit.high) if fit.low is not None else (fit.gain, fit.gain)
                bars = [[max(fit.gain - low, 0)], [max(high - fit.gain, 0)]]  # the interval need not hold the gain
                ax.errorbar([2 * fit.labels], [fit.doubled], yerr=bars, fmt="s", ms=4, capsize=3,
                            color=colours.get("best", "tab:green"))
            for r, x, y in zip(scored, xs, score):
                ax.annotate(str(r.number), (x, y), textcoords="offset points", xytext=(4, 2), fontsize=7, color=fg)
            ax.set_xlabel(xlabel, color=fg, fontsize=8)
            ax.set_ylabel(self.headline_words(), color=fg, fontsize=8)
            ax.set_ylim(-0.03, 1.05)
            ax.tick_params(colors=fg, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(fg)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format_RGBA8888)
        self.plot.setPixmap(QPixmap.fromImage(image.copy()))
        self.plot.setVisible(True)
        self.figure = fig  # kept for tests and for saving

    # -- restoring ------------------------------------------------------------------------------
    def restore(self, number) -> bool:
        """Bring back round `number`'s weights, in a worker; True if it started."""
        trainer = self.session.trainer
        if trainer is None or number is None:
            notify("There is no round to restore yet.")
            return False

        def done(_):
            self.message.value = (f"Round {number} restored: predictions are round {number}'s again, and the next "
                                  "Start trains on from them.")
            self.refresh(force=True)

        return self.session.run_task(lambda: trainer.restore_round(int(number)), done)
