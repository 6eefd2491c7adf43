import csv

import pytest

from napari_mia.engine.events import EpochEnd, IterationEnd
from napari_mia.widgets.training import TrainingWidget
from tests.widgets.conftest import quick, stop_at, wait_idle


@pytest.fixture
def docks(nuclei_viewer):
    train = TrainingWidget(nuclei_viewer)
    nuclei_viewer.window.add_dock_widget(train, name="Train Model")
    train.add_pair("nuclei", "nuclei labels")
    return train, train.open_plot_dock()


def test_plot_holds_the_logged_values_and_saves_the_record(docks, qtbot, tmp_path):
    train, plot = docks
    quick(train, epochs=3, steps=3, patch=64)
    events = []
    train.session.event.connect(events.append)
    train.start()
    wait_idle(qtbot, train.session)
    plot.redraw()
    its = [e for e in events if isinstance(e, IterationEnd)]
    eps = [e for e in events if isinstance(e, EpochEnd)]
    x, y = plot.lines["loss"].get_data()
    assert list(x) == [e.iteration for e in its] and list(y) == [e.loss for e in its]
    assert list(plot.lines["metric"].get_data()[1]) == [e.metric for e in its]
    assert list(plot.lines["val_metric"].get_data()[1]) == [e.val_metric for e in eps]
    assert list(plot.lines["train_loss"].get_data()[0]) == [1, 2, 3]
    # The epoch the trainer kept (its own rule: object F1 in instance mode, ties to the lower loss), not one
    # re-derived here.
    best = [e for e in eps if e.best][-1]
    assert best is train.session.record.best_epoch
    assert plot.best_markers[0].get_visible() and plot.best_markers[0].get_xdata()[0] == best.epoch
    assert f"best validation: epoch {best.epoch}" in plot.info.value
    csv_path, png = plot.save_record(tmp_path / "record.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(its) + len(eps)
    assert [float(r["loss"]) for r in rows if r["kind"] == "iteration"] == pytest.approx([e.loss for e in its])
    assert [float(r["val_metric"]) for r in rows if r["kind"] == "epoch"] == pytest.approx([e.val_metric
                                                                                            for e in eps])
    assert png.stat().st_size > 10_000


def test_stop_and_resume_from_the_plot_dock(docks, qtbot):
    train, plot = docks
    quick(train, epochs=2, steps=3, patch=64)
    seen, on_event = stop_at(train.session, plot.stop_button, 1)
    failures = []
    train.session.failed.connect(failures.append)
    train.start()
    wait_idle(qtbot, train.session)
    assert not failures
    assert seen[-1].reason == "stopped" and plot.resume_button.enabled
    train.session.event.disconnect(on_event)
    plot.resume_button.native.click()
    wait_idle(qtbot, train.session)
    assert train.session.record.iterations[-1].iteration == 6


def test_redraws_are_throttled_whatever_the_iteration_rate(docks, qtbot):
    train, plot = docks
    plot.draw_count = 0
    # 2000 iterations arriving within about a second: far faster than any redraw
    for i in range(1, 2001):
        train.session._on_event(IterationEnd(1, i, i, 1.0 / i, 0.5, 1e-3))
        if i % 200 == 0:
            qtbot.wait(100)
    qtbot.wait(400)
    assert 1 <= plot.draw_count <= 8
    assert len(plot.lines["loss"].get_data()[0]) == 2000


def test_epochs_without_iterations_say_why_the_top_half_is_empty(docks):
    """A model imported without its record CSV: the model file keeps its epochs only."""
    from napari_mia.widgets.plot import NO_ITERATIONS

    train, plot = docks
    for e in (1, 2, 3):
        train.session._on_event(EpochEnd(e, 0.5 / e, 0.3 * e, 0.6 / e, 0.25 * e, 1e-3, 10.0))
    plot._render(plot._snapshot(), (500, 500, 1.0))
    assert not plot.ax_loss.get_visible() and plot.ax_val_loss.get_visible()
    assert plot.iteration_note.get_visible() and plot.iteration_note.get_text() == NO_ITERATIONS
    assert "not kept in the model file" in NO_ITERATIONS
    train.session._on_event(IterationEnd(4, 1, 1, 0.2, 0.5, 1e-3))  # a run goes on: the values are there
    plot._render(plot._snapshot(), (500, 500, 1.0))
    assert plot.ax_loss.get_visible() and not plot.iteration_note.get_visible()


def test_the_legend_names_validation_only_where_there_is_one(docks):
    train, plot = docks
    for e in (1, 2):  # Validation split 0: no validation values
        train.session._on_event(IterationEnd(e, 1, e, 0.5, 0.5, 1e-3))
        train.session._on_event(EpochEnd(e, 0.5 / e, 0.3 * e, None, None, 1e-3, 10.0))
    plot._render(plot._snapshot(), (500, 500, 1.0))
    assert [t.get_text() for t in plot.legend.get_texts()] == ["training"]
    train.session.record.clear()
    for e in (1, 2):
        train.session._on_event(IterationEnd(e, 1, e, 0.5, 0.5, 1e-3))
        train.session._on_event(EpochEnd(e, 0.5 / e, 0.3 * e, 0.6 / e, 0.25 * e, 1e-3, 10.0))
    plot._render(plot._snapshot(), (500, 500, 1.0))
    assert [t.get_text() for t in plot.legend.get_texts()] == ["training", "validation"]


def test_the_plot_dock_opens_without_importing_matplotlib_on_the_main_thread(docks, monkeypatch):
    """matplotlib's first import takes seconds: the dock opens at once and makes its figure in its render thread."""
    import threading

    import napari_mia.widgets.plot as plot_module

    threads = []
    original = plot_module.TrainingPlotWidget._make_figure
    monkeypatch.setattr(plot_module.TrainingPlotWidget, "_make_figure",
                        lambda self: (threads.append(threading.current_thread()), original(self))[1])
    train, _ = docks
    train.session.plot_widget = None
    plot = train.open_plot_dock()
    plot.redraw()
    assert threads and threading.main_thread() not in threads
    assert plot.view.pixmap() is not None and not plot.view.pixmap().isNull()
