import threading

import numpy as np
import torch

from napari_mia.engine.events import IterationEnd, TrainingFinished
from tests.widgets.conftest import quick, snapshot, stop_at, unchanged, wait_idle, wait_free


def test_train_from_the_dock_on_real_nuclei(widget, nuclei_viewer, qtbot):
    viewer, session = nuclei_viewer, widget.session
    snap = snapshot(viewer)
    widget.image_combo.value, widget.labels_combo.value = "nuclei", "nuclei labels"
    widget.add_button.changed.emit(True)
    assert widget.pairs == [("nuclei", "nuclei labels")]
    quick(widget, epochs=3, steps=4)
    threads, events = [], []
    session.event.connect(lambda ev: (threads.append(threading.current_thread()), events.append(ev)))
    widget.start_button.native.click()
    assert not widget.start_button.enabled and widget.stop_button.enabled  # locked while running
    assert not widget.controls["architecture"].enabled
    wait_idle(qtbot, session)
    assert set(threads) == {threading.main_thread()}
    its = [e for e in events if isinstance(e, IterationEnd)]
    assert len(its) == 12 and isinstance(events[-1], TrainingFinished) and events[-1].reason == "completed"
    assert np.mean([e.loss for e in its[-3:]]) < np.mean([e.loss for e in its[:3]])
    assert widget.start_button.enabled and "Training finished" in widget.status.value
    assert unchanged(viewer, snap)
    # the plot dock opened by itself
    assert session.plot_widget is not None and "Training Data" in viewer.window._dock_widgets


def test_stop_keeps_weights_and_resume_continues(widget, nuclei_viewer, qtbot):
    session = widget.session
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=2, steps=4, patch=64)
    seen, on_event = stop_at(session, widget.stop_button, 2)
    widget.start()
    wait_idle(qtbot, session)
    # events reach the main thread queued: the stop lands within one step
    stopped_at = seen[-1].iteration
    assert seen[-1].reason == "stopped" and stopped_at in (2, 3)
    assert widget.resume_button.enabled and session.has_model
    session.event.disconnect(on_event)
    session.event.connect(seen.append)
    widget.resume_button.native.click()
    wait_idle(qtbot, session)
    its = [e.iteration for e in seen if isinstance(e, IterationEnd)]
    assert its == [1, 2, 3, 4, 5, 6, 7, 8] and seen[-1].reason == "completed"
    assert [e.resumed for e in seen if type(e).__name__ == "TrainingStarted"] == [False, True]


def test_save_then_load_restores_settings_and_predictions(widget, nuclei_viewer, qtbot, tmp_path, monkeypatch):
    session = widget.session
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=1, steps=3, patch=64)
    widget.controls["optimizer"].value = "adamax"
    widget.controls["rotate"].value = (-15.0, 15.0)
    widget.start()
    wait_idle(qtbot, session)
    widget.predict_combo.value = "nuclei"
    assert widget.predict()
    qtbot.waitUntil(lambda: "nuclei prediction" in nuclei_viewer.layers, timeout=60_000)
    wait_idle(qtbot, session)
    first = np.array(nuclei_viewer.layers["nuclei prediction"].data)
    assert first.shape == nuclei_viewer.layers["nuclei"].data.shape and first.max() > 0
    assert widget.save_model(tmp_path / "m.pt")
    saved = widget.read_settings()

    # Reset asks for confirmation: answer yes
    from qtpy.QtWidgets import QMessageBox
    import napari_mia.widgets.sections.actions as tw

    orig = tw.QMessageBox.question
    tw.QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.Yes)
    try:
        widget.reset_button.native.click()
    finally:
        tw.QMessageBox.question = orig
    assert not session.has_model
    widget.controls["optimizer"].value = "sgd"
    widget.controls["architecture"].value = "FPN"
    assert widget.load_model(tmp_path / "m.pt")
    wait_free(qtbot, session)  # the file is read in a worker
    assert widget.read_settings() == saved
    assert widget.controls["optimizer"].value == "adamax" and widget.controls["rotate"].value == (-15.0, 15.0)
    nuclei_viewer.layers.remove("nuclei prediction")
    widget.predict()
    qtbot.waitUntil(lambda: "nuclei prediction" in nuclei_viewer.layers, timeout=60_000)
    wait_idle(qtbot, session)
    assert np.array_equal(nuclei_viewer.layers["nuclei prediction"].data, first)

    # Start after Load continues from the loaded weights as `train --from` does: BatchNorm's statistics stay as the
    # model learned them (a trained model re-estimates them after its run otherwise), the weights learn.
    assert session.trainer.settings.train.freeze_normalization is False  # the model trained here, from scratch
    before = {k: v.clone() for k, v in session.trainer.model.state_dict().items()}
    quick(widget, epochs=1, steps=2, patch=64)
    import napari.utils.notifications as notifications

    said = []
    monkeypatch.setattr(notifications, "show_info", said.append)
    widget.start()
    assert len(said) == 1 and "Training m.pt further: its normalisation statistics (BatchNorm) stay" in said[0]
    wait_idle(qtbot, session)
    assert session.trainer.settings.train.freeze_normalization
    assert "normalisation statistics are kept" in widget.device_label.value  # said while it trains, not only at Start
    after = session.trainer.model.state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    widget.start()  # the next round on the same model: said once is enough
    wait_idle(qtbot, session)
    assert len(said) == 1 and session.trainer.settings.train.freeze_normalization
    assert widget.load_model(tmp_path / "m.pt")  # the same file loaded again is a new start: said again
    wait_free(qtbot, session)
    widget.start()
    wait_idle(qtbot, session)
    assert len(said) == 2


def test_mismatched_layers_are_refused_with_both_names(widget, nuclei_viewer):
    nuclei_viewer.add_labels(np.zeros((100, 120), np.uint8), name="wrong labels")
    assert not widget.add_pair("nuclei", "wrong labels")
    assert "nuclei" in widget.status.value and "wrong labels" in widget.status.value
    assert "(4, 256, 256)" in widget.status.value and "(100, 120)" in widget.status.value
    assert widget.pairs == []


def test_worker_errors_become_messages_and_the_widget_recovers(widget, nuclei_viewer, qtbot):
    labels = np.zeros((4, 256, 256), np.uint8)
    labels[0, 10:20, 10:20] = 1
    nuclei_viewer.add_labels(labels, name="empty")
    assert widget.add_pair("nuclei", "empty")
    nuclei_viewer.layers["empty"].data[:] = 0  # erased after Add (empty labels are refused at Add): Start refuses
    quick(widget)
    messages = []
    widget.session.failed.connect(messages.append)
    widget.start()
    wait_idle(qtbot, widget.session)
    assert messages and "empty" in messages[0] and "Paint at least one object" in messages[0]
    assert widget.start_button.enabled and widget.controls["architecture"].enabled


def test_start_twice_is_refused(widget, nuclei_viewer, qtbot):
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=1, steps=3, patch=64)
    assert widget.start()
    assert not widget.start()  # refused, with a message, while the first runs
    assert "already running" in widget.status.value
    wait_idle(qtbot, widget.session)


def test_opening_the_widget_does_not_import_torch(new_napari):
    out, lines = new_napari  # a fresh napari (conftest.NEW_NAPARI): the dock opened as the Plugins menu does
    assert "OPENED" in lines, out.stdout[-2000:] + out.stderr[-3000:]
    loaded, seconds = lines["OPENED"].split()[1:]
    assert loaded == "False", out.stderr[-2000:]


def test_training_after_the_viewer_exists_does_not_crash(new_napari):
    """The order a user has: viewer (Mesa may load libLLVM) first, torch on the first Start or Load Model (in
    the dock's worker), then a model run (conftest.NEW_NAPARI).

    Without the guard in napari_mia._llvm the process dies with SIGSEGV here on llvmpipe (as under Xvfb).
    """
    out, lines = new_napari
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert lines["RAN"].endswith("(1, 2, 64, 64)"), out.stdout[-2000:]


def test_signals_that_arrive_inside_a_handler_wait_their_turn(qtbot):
    """napari's progress bar runs processEvents when it moves, which delivers the worker's
    next signals while a handler still runs; subscribers must still see them in order."""
    from napari_mia.widgets._session import TRAINING, TrainingSession

    session = TrainingSession()
    seen = []

    def nested_delivery(ev):
        if ev.iteration == 1:
            session._in_order(session._on_event, IterationEnd(1, 2, 2, 0.5, 0.5, 1e-3))
            session._in_order(session._on_finished)

    session.event.connect(nested_delivery)
    session.event.connect(lambda ev: seen.append((ev.iteration, session.state)))
    session.state = TRAINING
    session._in_order(session._on_event, IterationEnd(1, 1, 1, 0.6, 0.5, 1e-3))
    assert seen == [(1, TRAINING), (2, TRAINING)] and session.state == "idle"


def test_classes_are_listed_in_the_colours_of_the_labels_layer(widget, nuclei_viewer):
    data = np.zeros((4, 256, 256), np.uint8)
    data[0, :10, :10], data[1, 20:30, :10] = 1, 2
    lab = nuclei_viewer.add_labels(data, name="two classes")
    widget.controls["label_mode"].value = "classes"
    assert widget.add_pair("nuclei", "two classes")
    text = widget.classes_label.value
    hex2 = "#%02x%02x%02x" % tuple(int(round(255 * c)) for c in np.asarray(lab.get_color(2), float).ravel()[:3])
    assert text.startswith("background, ") and text.count("&#9632;") == 2 and f"color:{hex2}" in text
