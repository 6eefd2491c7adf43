"""The "Training Data" dock: MIA's Train Data window.

Top: training loss and metric per iteration. Bottom: per epoch, validation
(red) against training (dashed blue), for instance models also the validation
objects' F1 (purple), which picks the best epoch (the green line). It draws the session's record at most
a few times a second, whatever the iteration rate, and renders the figure in
a thread of its own: one matplotlib draw of the four axes takes 200-400 ms on
a busy 2-core machine, which on the main thread froze the viewer that long
(docs/benchmarks.md). The main thread only shows the finished picture.

The figure wears the viewer's theme (and follows a change of it); an axes with
nothing to show yet is hidden, and tick labels never use an offset ("1e-17").

matplotlib is imported, and the figure made, in that render thread too: its
first import takes seconds (more while torch loads beside it), and the dock
opens on the main thread at the first Start. Until the first picture the view
says that the curves will appear there.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from napari.utils.theme import get_theme
from magicgui.widgets import Container, Label, PushButton
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (QFileDialog, QFrame, QLabel, QMessageBox, QScrollArea, QSizePolicy, QStackedWidget,
                            QVBoxLayout, QWidget)

from ..engine.errors import MiaError
from ..engine.events import IterationEnd, TrainingStarted
from ..workflows.events import RoundDone
from ._layout import wrap
from ._messages import notify
from ._session import TRAINING, session_for
from .label_next import LabelNextView
from .rounds import RoundsView

REDRAW_MS = 300
SHORT_PX = 300  # a plot lower than this shows one row of curves
DPI = 100
PLACEHOLDER = "The curves appear here when the training starts."
# Import model without its record CSV: the model file keeps the epochs only.
NO_ITERATIONS = "Per-iteration values are not kept in the model file:\nthe epochs are below."
# What the render thread makes (``_make_figure``); reading one on the main thread waits until it is made.
FIGURE_PARTS = frozenset({"figure", "canvas", "ax_loss", "ax_metric", "ax_val_loss", "ax_val_metric", "lines",
                          "best_markers", "legend", "metric_legend", "placeholder", "iteration_note",
                          "_grid_2x2", "_grid_1x2"})


class TrainingPlotWidget(QWidget):
    _rendered = Signal(object)  # (RGBA array, device pixel ratio), from the render thread

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.view = QLabel(PLACEHOLDER)  # the figure's pictures, once matplotlib is there
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setWordWrap(True)
        # The Train Model dock above keeps its actions in sight, and a third dock (Results) its title bar.
        self.view.setMinimumSize(280, 100)
        self.view.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)  # no growing to the picture
        self.view.setScaledContents(True)  # a picture drawn for the previous size fills the view until the next
        self._render_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-mia-plot")
        self._rendered.connect(self._show)
        self._metric = self._metric_name()
        self._labelled = None  # the metric the axes' titles name
        self._theme = None
        # The figure is made where it is drawn; the first render waits for it there, as `redraw` does here.
        self._figure_made: Future = self._render_thread.submit(self._make_figure)
        self._rendering: Future | None = self._figure_made

        self.info = Label(value="Waiting for training to start.")
        self.stop_button = PushButton(text="Stop Training")
        self.resume_button = PushButton(text="Resume Training")
        self.save_button = PushButton(text="Save record", tooltip="Write every logged value (CSV) and this plot (PNG).")
        # Shown once there is a round: switches the picture between the curves and the Rounds view.
        self.rounds_button = PushButton(text="Rounds", tooltip="Show the rounds: every training, scored on the "
                                                                 "test pairs. Press again for the curves.")
        self.rounds_button.visible = False
        buttons = Container(widgets=[self.stop_button, self.resume_button, self.save_button, self.rounds_button],
                            layout="horizontal",
                            labels=False)
        wrap(self.info)  # the best epoch's score lengthens it: it must not widen the docks' column (window)
        # Every training is a round: the Rounds view compares them on the test images. Hidden until there is a
        # round (it takes no height from the curves until then).
        self.rounds = RoundsView(self.session, lambda: self.theme_colours())
        self.label_next = LabelNextView(napari_viewer, self.session)
        self.rounds.layout().addWidget(self.label_next)
        # It scrolls rather than squeeze the curves, or overlap itself, in a short column.
        self.section_rounds = QScrollArea()
        self.section_rounds.setWidget(self.rounds)
        self.section_rounds.setWidgetResizable(True)
        self.section_rounds.setFrameShape(QFrame.Shape.NoFrame)
        self.section_rounds.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.section_rounds.setMinimumHeight(100)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.section_rounds)
        lay = QVBoxLayout(self)
        lay.addWidget(self.stack, stretch=1)
        lay.addWidget(self.info.native)
        lay.addWidget(buttons.native)

        self.stop_button.changed.connect(self.session.stop)
        self.resume_button.changed.connect(self.session.resume)
        self.save_button.changed.connect(self._on_save)
        self.rounds_button.changed.connect(lambda *_: self.show_rounds(self.stack.currentWidget() is self.view))
        self.session.connect_widget(self, [(self.session.event, self._on_event),
                                           (self.session.state_changed, self._update_buttons),
                                           (self.session.round_done, self._on_round),
                                           (self.session.event, self._on_round),
                                           (self.session.state_changed, self._on_rounds_changed)])
        # Follow the viewer's theme (napari's Preferences, or viewer.theme = ...).
        theme_event, on_theme = napari_viewer.events.theme, self._on_theme
        theme_event.connect(on_theme)
        self.destroyed.connect(lambda *_: theme_event.disconnect(on_theme))
        self._dirty = True
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw_if_dirty)
        self.timer.start()
        self.draw_count = 0
        self._update_buttons()

    def _make_figure(self) -> None:
        """The figure, its axes and curves (in the render thread: this imports matplotlib)."""
        # lazy: matplotlib takes seconds to import, so in this render thread, never as the dock opens
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.figure = Figure(figsize=(6, 4.5), dpi=DPI, tight_layout=True)
        self.canvas = FigureCanvasAgg(self.figure)  # off screen; `view` shows its pictures
        axes = self.figure.subplots(2, 2)
        self._grid_2x2 = [ax.get_subplotspec() for ax in axes.ravel()]
        self._grid_1x2 = list(self.figure.add_gridspec(1, 2))
        self.ax_loss, self.ax_metric = axes[0]
        self.ax_val_loss, self.ax_val_metric = axes[1]
        self.lines = {
            "loss": self.ax_loss.plot([], [], color="tab:blue", lw=0.8)[0],
            "metric": self.ax_metric.plot([], [], color="tab:blue", lw=0.8)[0],
            "train_loss": self.ax_val_loss.plot([], [], "--", color="tab:blue", marker=".", label="training")[0],
            "val_loss": self.ax_val_loss.plot([], [], color="tab:red", marker=".", label="validation")[0],
            "train_metric": self.ax_val_metric.plot([], [], "--", color="tab:blue", marker=".", label="training")[0],
            "val_metric": self.ax_val_metric.plot([], [], color="tab:red", marker=".", label="validation")[0],
            # instance models: objects matched at IoU 0.5 on the whole validation images (picks the best epoch)
            "val_objects": self.ax_val_metric.plot([], [], color="tab:purple", marker=".",
                                                   label="validation objects F1")[0],
        }
        self.best_markers = [ax.axvline(0, color="tab:green", lw=1, alpha=0.6, visible=False)
                             for ax in (self.ax_val_loss, self.ax_val_metric)]
        self.legend = self.ax_val_loss.legend(loc="upper right", fontsize=7)
        self.metric_legend = None  # on the metric axes once there is an objects F1 curve
        for ax in (self.ax_loss, self.ax_metric, self.ax_val_loss, self.ax_val_metric):
            ax.ticklabel_format(axis="y", useOffset=False)  # no "1e-17" offset above a flat curve
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations and epochs are whole numbers
        self.placeholder = self.figure.text(0.5, 0.5, PLACEHOLDER, ha="center", va="center", fontsize=9)
        # where the per-iteration axes would be (the top half), for a record without them
        self.iteration_note = self.figure.text(0.5, 0.75, NO_ITERATIONS, ha="center", va="center", fontsize=9,
                                               visible=False)
        self._apply_labels(self._metric)

    def __getattr__(self, name: str):
        # The figure's parts are made in the render thread: wait for them (matplotlib's first import: seconds).
        made = self.__dict__.get("_figure_made")
        if name in FIGURE_PARTS and made is not None:
            made.result()
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _metric_name(self) -> str:
        trainer = self.session.trainer
        return trainer.settings.train.metric if trainer is not None else "metric"

    def _label_axes(self):
        """The axes' titles name the session's metric (drawn with the next render, in the render thread)."""
        self._metric = self._metric_name()
        self._dirty = True

    def _apply_labels(self, metric: str) -> None:
        for ax, title in [(self.ax_loss, "training loss"), (self.ax_metric, f"training {metric}"),
                          (self.ax_val_loss, "loss per epoch"), (self.ax_val_metric, f"{metric} per epoch")]:
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        self.ax_loss.set_xlabel("iteration", fontsize=8)
        self.ax_metric.set_xlabel("iteration", fontsize=8)
        self.ax_val_loss.set_xlabel("epoch", fontsize=8)
        self.ax_val_metric.set_xlabel("epoch", fontsize=8)
        self._labelled = metric
        self._theme = None  # new titles and labels: the next render colours them

    def _on_theme(self, *_):
        self._dirty = True  # the next render puts the new colours on

    def theme_colours(self) -> dict:
        """The figure's colours from the viewer's theme: the dock's background, its text, and line colours
        that read on it (matplotlib's defaults on a light theme, lighter ones on a dark one)."""
        theme = get_theme(self.viewer.theme)
        bg = theme.background.as_hex()
        r, g, b = (int(bg[i:i + 2], 16) for i in (1, 3, 5))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 128
        lines = {"train": "#5aa9f0", "val": "#ff7a6e", "objects": "#d7a6ff", "best": "#7bd88f"} if dark else \
            {"train": "tab:blue", "val": "tab:red", "objects": "tab:purple", "best": "tab:green"}
        return {"background": bg, "text": theme.text.as_hex(), "frame": theme.secondary.as_hex(), **lines}

    def _apply_theme(self, colours: dict) -> None:
        """Put `colours` on the figure (in the thread that renders it)."""
        self.figure.set_facecolor(colours["background"])
        self.placeholder.set_color(colours["text"])
        self.iteration_note.set_color(colours["text"])
        for ax in (self.ax_loss, self.ax_metric, self.ax_val_loss, self.ax_val_metric):
            ax.set_facecolor(colours["background"])
            ax.title.set_color(colours["text"])
            ax.xaxis.label.set_color(colours["text"])
            ax.tick_params(colors=colours["text"], which="both")
            for spine in ax.spines.values():
                spine.set_color(colours["frame"])
        for name, line in self.lines.items():
            line.set_color(colours["objects" if name == "val_objects" else "val" if name.startswith("val")
                                   else "train"])
        for m in self.best_markers:
            m.set_color(colours["best"])
        self._theme = colours

    def _legends(self, validation: bool, objects: bool) -> None:
        """The loss axes name their curves, "validation" only where there is validation; the metric axes too
        once the objects F1 curve is among them (`objects`)."""
        c = self._theme or {}
        style = {"fontsize": 7, "facecolor": c.get("background"), "edgecolor": c.get("frame"),
                 "labelcolor": c.get("text")}
        lines = self.lines
        self.legend = self.ax_val_loss.legend(
            handles=[lines["train_loss"], *([lines["val_loss"]] if validation else [])], loc="upper right", **style)
        if objects:
            self.metric_legend = self.ax_val_metric.legend(
                handles=[lines["train_metric"], *([lines["val_metric"]] if validation else []), lines["val_objects"]],
                loc="lower right", **style)
        elif self.metric_legend is not None:
            self.metric_legend.set_visible(False)

    def _on_event(self, ev):
        self._dirty = True
        if isinstance(ev, TrainingStarted):
            self._label_axes()
        if isinstance(ev, IterationEnd):
            self.info.value = f"epoch {ev.epoch}, iteration {ev.iteration}, learning rate {ev.lr:.2g}"

    def show_record(self) -> None:
        """The session's record was replaced (Import model): titles with the model's metric, drawn afresh."""
        self._label_axes()
        rec = self.session.record
        last = rec.iterations[-1] if rec.iterations else None
        self.info.value = f"Imported: {_count(len(rec.epochs), 'epoch')}" + (
            f", {_count(last.iteration, 'iteration')}" if last is not None else "")
        self._dirty = True

    def _redraw_if_dirty(self):
        if self._dirty and not self.isHidden() and (self._rendering is None or self._rendering.done()):
            self._dirty = False
            self.draw_count += 1
            self._update_info()
            self._rendering = self._render_thread.submit(self._render, self._snapshot(), self._pixel_size())
            self._rendering.add_done_callback(self._hand_over)

    def redraw(self):
        """Put the record's values into the artists and draw, now (waits for a render in flight)."""
        if self._rendering is not None:
            self._rendering.result()
        self._dirty = False
        self.draw_count += 1
        self._update_info()
        self._show(self._render(self._snapshot(), self._pixel_size()))

    def _snapshot(self) -> dict:
        """The record's values as plain lists, copied on the main thread that appends to them."""
        rec = self.session.record
        its, eps = list(rec.iterations), list(rec.epochs)
        val = [e for e in eps if e.val_loss is not None]
        best = rec.best_epoch
        return {
            "loss": ([e.iteration for e in its], [e.loss for e in its]),
            "metric": ([e.iteration for e in its], [e.metric for e in its]),
            "train_loss": ([e.epoch for e in eps], [e.train_loss for e in eps]),
            "train_metric": ([e.epoch for e in eps], [e.train_metric for e in eps]),
            "val_loss": ([e.epoch for e in val], [e.val_loss for e in val]),
            "val_metric": ([e.epoch for e in val], [e.val_metric for e in val]),
            "val_objects": ([e.epoch for e in eps if e.val_objects is not None],
                            [e.val_objects for e in eps if e.val_objects is not None]),
            "best": None if best is None else best.epoch,
            "theme": self.theme_colours(),
            "metric_name": self._metric,
        }

    def _pixel_size(self) -> tuple[int, int, float]:
        ratio = float(self.view.devicePixelRatioF())
        # the view's own size: a bigger picture would be squeezed into it (scaled contents), blurred
        return max(self.view.width(), 100), max(self.view.height(), 80), ratio

    def _render(self, data: dict, size: tuple[int, int, float]):
        """Draw the figure into an RGBA array: runs in the render thread (or in `redraw`)."""
        for name, line in self.lines.items():
            line.set_data(*data[name])
        for m in self.best_markers:
            m.set_visible(data["best"] is not None)
            if data["best"] is not None:
                m.set_xdata([data["best"], data["best"]])
        if data["metric_name"] != self._labelled:
            self._apply_labels(data["metric_name"])
        if data["theme"] != self._theme:
            self._apply_theme(data["theme"])
        shown = {self.ax_loss: data["loss"], self.ax_metric: data["metric"],
                 self.ax_val_loss: data["train_loss"], self.ax_val_metric: data["train_metric"]}
        # A short dock (napari's default window: the Train Model dock above keeps its buttons) shows one
        # row, readable: the per-epoch curves once there are any, the per-iteration ones before.
        one_row = size[1] < SHORT_PX
        epochs = len(data["train_loss"][0]) > 0
        self._arrange(one_row, epochs)
        objects = len(data["val_objects"][0]) > 0
        # A short plot has no room for a legend over its curves: the title names the objects F1 line instead.
        self._legends(len(data["val_loss"][0]) > 0, objects and not one_row)
        self.ax_val_metric.title.set_text(f"{self._metric}, objects F1 (purple)" if objects and one_row
                                          else f"{self._metric} per epoch")  # set_text keeps the theme's colour
        for ax, (x, _) in shown.items():
            hidden_row = one_row and (ax in (self.ax_loss, self.ax_metric)) == epochs
            ax.set_visible(len(x) > 0 and not hidden_row)  # no empty +-0.05 axes before the first values
            ax.set_autoscale_on(True)  # set_xlim below (one or two values) switched it off
            ax.relim()
            ax.autoscale_view()
            if len(x) and max(x) - min(x) < 2:  # one or two values: whole-number ticks, not 0.95 ... 1.05
                ax.set_xlim(min(x) - 1, max(x) + 1)
        self.placeholder.set_visible(not any(len(x) for x, _ in shown.values()))
        # epochs without iterations (a model imported without its record): the top half says why it is empty
        self.iteration_note.set_visible(epochs and not one_row and not len(data["loss"][0]))
        w, h, ratio = size
        self.figure.set_dpi(DPI * ratio)
        self.figure.set_size_inches(w / DPI, h / DPI)
        self.canvas.draw()
        return np.array(self.canvas.buffer_rgba()), ratio

    def _arrange(self, one_row: bool, epochs: bool) -> None:
        """2 x 2 axes, or the shown row alone across the figure."""
        axes = (self.ax_loss, self.ax_metric, self.ax_val_loss, self.ax_val_metric)
        if one_row:
            row = axes[2:] if epochs else axes[:2]
            for ax, spec in zip(row, self._grid_1x2):
                ax.set_subplotspec(spec)
        else:
            for ax, spec in zip(axes, self._grid_2x2):
                ax.set_subplotspec(spec)

    def _hand_over(self, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        try:
            self._rendered.emit(future.result())  # queued to the main thread
        except RuntimeError:  # the dock was closed (deleted by Qt) while this picture was drawn
            pass

    def _show(self, rendered) -> None:
        rgba, ratio = rendered
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format_RGBA8888)
        pixmap = QPixmap.fromImage(image.copy())  # the copy owns its pixels
        pixmap.setDevicePixelRatio(ratio)
        self.view.setPixmap(pixmap)

    def _update_info(self) -> None:
        best = self.session.record.best_epoch
        if best is not None:
            score = f"objects F1 {best.val_objects:.3f}" if best.val_objects is not None else \
                "" if best.val_metric is None else f"{best.val_metric:.3f}"
            self.info.value = (self.info.value.split("  |")[0] +
                               f"  |  best validation: epoch {best.epoch}" + (f" ({score})" if score else ""))

    def show_rounds(self, on: bool = True) -> None:
        """The Rounds view in place of the curves (or the curves again)."""
        self.stack.setCurrentWidget(self.section_rounds if on else self.view)
        self.rounds_button.text = "Curves" if on else "Rounds"

    def _on_round(self, ev) -> None:
        if isinstance(ev, RoundDone):  # the training is over: its verdict
            self.rounds.on_event(ev)
            self.rounds_button.visible = True
            self.show_rounds(True)
        elif isinstance(ev, TrainingStarted):  # a new run: its curves
            self.show_rounds(False)

    def _on_rounds_changed(self, *_) -> None:
        """A load or a reset changes the rounds: the button shows while the model has any."""
        self.rounds.refresh()
        has = self.rounds.table.rowCount() > 0
        self.rounds_button.visible = has
        if not has:
            self.show_rounds(False)

    def resizeEvent(self, event):  # noqa: N802 - Qt's name
        self._dirty = True  # render again at the new size
        super().resizeEvent(event)

    def _update_buttons(self, *_):
        self.stop_button.enabled = self.session.state == TRAINING
        self.resume_button.enabled = self.session.can_resume

    def _on_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save training record", "training_record.csv", "CSV (*.csv)")
        if path:
            self.save_record(path)

    def save_record(self, path) -> tuple[Path, Path] | None:
        """Write the CSV and, beside it, a PNG of the plot."""
        path = Path(path)
        try:
            csv = self.session.record.write_csv(path)
            self.redraw()  # also waits for the render thread, which owns the figure meanwhile
            self._render(self._snapshot(), (600, 450, 1.0))  # the file gets all four plots, however short the dock
            self._dirty = True
            png = path.with_suffix(".png")
            self.figure.savefig(png, dpi=120)
        except (MiaError, OSError) as e:
            notify(str(e), "error")
            return None
        self.info.value = f"Record saved: {csv.name}, {png.name}"
        return csv, png

    def closeEvent(self, event):  # noqa: N802 - Qt's name
        if self.session.state == TRAINING:
            answer = QMessageBox.question(self, "Training is running", "Stop the training too?")
            if answer == QMessageBox.Yes:
                self.session.stop()
        self.timer.stop()
        self._render_thread.shutdown(wait=False)
        if getattr(self.session, "plot_widget", None) is self:
            self.session.plot_widget = None
        super().closeEvent(event)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
