"""The "Training Data" dock: MIA's Train Data window.

Top: training loss and metric per iteration. Bottom: per epoch, validation
(red) against training (dashed blue). It draws the session's record at most
a few times a second, whatever the iteration rate, so plotting never slows
training or the viewer.
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Container, Label, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QMessageBox, QVBoxLayout, QWidget

from ..engine.errors import MiaError
from ._session import TRAINING, session_for

REDRAW_MS = 300


class TrainingPlotWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.figure = Figure(figsize=(6, 4.5), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        axes = self.figure.subplots(2, 2)
        self.ax_loss, self.ax_metric = axes[0]
        self.ax_val_loss, self.ax_val_metric = axes[1]
        self.lines = {
            "loss": self.ax_loss.plot([], [], color="tab:blue", lw=0.8)[0],
            "metric": self.ax_metric.plot([], [], color="tab:blue", lw=0.8)[0],
            "train_loss": self.ax_val_loss.plot([], [], "--", color="tab:blue", marker=".", label="training")[0],
            "val_loss": self.ax_val_loss.plot([], [], color="tab:red", marker=".", label="validation")[0],
            "train_metric": self.ax_val_metric.plot([], [], "--", color="tab:blue", marker=".", label="training")[0],
            "val_metric": self.ax_val_metric.plot([], [], color="tab:red", marker=".", label="validation")[0],
        }
        self.best_markers = [ax.axvline(0, color="tab:green", lw=1, alpha=0.6, visible=False)
                             for ax in (self.ax_val_loss, self.ax_val_metric)]
        self.ax_val_loss.legend(loc="upper right", fontsize=7)
        self._label_axes()

        self.info = Label(value="Waiting for training to start.")
        self.stop_button = PushButton(text="Stop Training")
        self.resume_button = PushButton(text="Resume Training")
        self.save_button = PushButton(text="Save record", tooltip="Write every logged value (CSV) and this plot (PNG).")
        buttons = Container(widgets=[self.stop_button, self.resume_button, self.save_button], layout="horizontal",
                            labels=False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.canvas)
        lay.addWidget(self.info.native)
        lay.addWidget(buttons.native)

        self.stop_button.changed.connect(self.session.stop)
        self.resume_button.changed.connect(self.session.resume)
        self.save_button.changed.connect(self._on_save)
        self.session.event.connect(self._on_event)
        self.session.state_changed.connect(self._update_buttons)
        self._dirty = True
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw_if_dirty)
        self.timer.start()
        self.draw_count = 0
        self._update_buttons()

    def _label_axes(self):
        metric = "metric"
        if self.session.trainer is not None:
            metric = self.session.trainer.settings.train.metric
        for ax, title in [(self.ax_loss, "training loss"), (self.ax_metric, f"training {metric}"),
                          (self.ax_val_loss, "loss per epoch"), (self.ax_val_metric, f"{metric} per epoch")]:
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        self.ax_loss.set_xlabel("iteration", fontsize=8)
        self.ax_metric.set_xlabel("iteration", fontsize=8)
        self.ax_val_loss.set_xlabel("epoch", fontsize=8)
        self.ax_val_metric.set_xlabel("epoch", fontsize=8)

    def _on_event(self, ev):
        from ..engine.events import IterationEnd, TrainingStarted

        self._dirty = True
        if isinstance(ev, TrainingStarted):
            self._label_axes()
        if isinstance(ev, IterationEnd):
            self.info.value = f"epoch {ev.epoch}, iteration {ev.iteration}, learning rate {ev.lr:.2g}"

    def _redraw_if_dirty(self):
        if self._dirty and not self.isHidden():
            self.redraw()

    def redraw(self):
        """Put the record's values into the artists and draw."""
        rec = self.session.record
        its, eps = rec.iterations, rec.epochs
        x = [e.iteration for e in its]
        self.lines["loss"].set_data(x, [e.loss for e in its])
        self.lines["metric"].set_data(x, [e.metric for e in its])
        ex = [e.epoch for e in eps]
        self.lines["train_loss"].set_data(ex, [e.train_loss for e in eps])
        self.lines["train_metric"].set_data(ex, [e.train_metric for e in eps])
        vx = [e.epoch for e in eps if e.val_loss is not None]
        self.lines["val_loss"].set_data(vx, [e.val_loss for e in eps if e.val_loss is not None])
        self.lines["val_metric"].set_data(vx, [e.val_metric for e in eps if e.val_metric is not None])
        best = rec.best_epoch
        for m in self.best_markers:
            m.set_visible(best is not None)
            if best is not None:
                m.set_xdata([best.epoch, best.epoch])
        for ax in (self.ax_loss, self.ax_metric, self.ax_val_loss, self.ax_val_metric):
            ax.relim()
            ax.autoscale_view()
        if best is not None:
            self.info.value = (self.info.value.split("  |")[0] +
                               f"  |  best validation: epoch {best.epoch} ({best.val_metric:.3f})")
        self.canvas.draw_idle()
        self.draw_count += 1
        self._dirty = False

    def _update_buttons(self, *_):
        self.stop_button.enabled = self.session.state == TRAINING
        self.resume_button.enabled = self.session.can_resume

    def _on_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save training record", "training_record.csv", "CSV (*.csv)")
        if path:
            self.save_record(path)

    def save_record(self, path) -> tuple[Path, Path] | None:
        """Write the CSV and, beside it, a PNG of the plot."""
        from napari.utils.notifications import show_error

        path = Path(path)
        try:
            csv = self.session.record.write_csv(path)
            self.redraw()
            png = path.with_suffix(".png")
            self.figure.savefig(png, dpi=120)
        except (MiaError, OSError) as e:
            show_error(f"napari-mia: {e}")
            return None
        self.info.value = f"Record saved: {csv.name}, {png.name}"
        return csv, png

    def closeEvent(self, event):  # noqa: N802 - Qt's name
        if self.session.state == TRAINING:
            answer = QMessageBox.question(self, "Training is running", "Stop the training too?")
            if answer == QMessageBox.Yes:
                self.session.stop()
        self.timer.stop()
        if getattr(self.session, "plot_widget", None) is self:
            self.session.plot_widget = None
        super().closeEvent(event)
