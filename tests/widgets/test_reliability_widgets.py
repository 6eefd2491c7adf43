"""Bad input and interruptions in a real viewer: a notification in plain words, the widget usable
again, the user's layers unchanged (docs/reliability.md)."""

import gc

import numpy as np

from napari_mia.widgets.training import TrainingWidget
from tests.widgets.conftest import quick, snapshot, unchanged, wait_idle


def _trained(widget, qtbot, steps=2):
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=1, steps=steps, patch=64, val_split=0.0)  # any model will do
    widget.start()
    wait_idle(qtbot, widget.session)


def test_3d_labels_for_a_2d_image_are_refused(widget, nuclei_viewer, warnings_shown):
    nuclei_viewer.add_image(np.zeros((256, 256), np.uint8), name="single")
    assert not widget.add_pair("single", "nuclei labels")
    assert "Image 'single' (256, 256) and labels 'nuclei labels' (4, 256, 256)" in warnings_shown[-1]
    assert widget.pairs == []


def test_colour_image_for_a_mono_model(widget, nuclei_viewer, qtbot, warnings_shown):
    _trained(widget, qtbot)
    rgb = np.repeat(np.asarray(nuclei_viewer.layers["nuclei"].data)[..., None], 3, axis=-1)
    nuclei_viewer.add_image(rgb, name="colour", rgb=True)
    snap = snapshot(nuclei_viewer)
    widget.predict_combo.value = "colour"
    failures = widget.session.failures
    widget.predict()
    qtbot.waitUntil(lambda: widget.session.failures > failures and not widget.session._predicting, timeout=60_000)
    assert "3 channels but the model expects Mono" in warnings_shown[-1]
    assert unchanged(nuclei_viewer, snap) and "colour prediction" not in nuclei_viewer.layers


def test_out_of_memory_in_the_worker_says_what_to_lower(widget, nuclei_viewer, qtbot, warnings_shown):
    _trained(widget, qtbot)
    snap = snapshot(nuclei_viewer)

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    widget.session.trainer.model.forward = boom
    widget.start()
    wait_idle(qtbot, widget.session)
    assert "Lower the batch size or the patch size" in warnings_shown[-1]
    assert widget.start_button.enabled and unchanged(nuclei_viewer, snap)


def test_corrupt_model_file_and_unwritable_folder(widget, nuclei_viewer, qtbot, tmp_path, warnings_shown):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model at all")
    settings = widget.read_settings()
    assert not widget.load_model(bad)  # plainly not a model: refused at once, before torch is imported
    assert "not a napari-mia model file" in warnings_shown[-1] and widget.read_settings() == settings
    assert not widget.session.busy
    import zipfile

    with zipfile.ZipFile(tmp_path / "whole.pt", "w") as z:  # laid out as torch.save lays out a file
        z.writestr("m/data.pkl", b"x" * 1000)
        z.writestr("m/data/0", np.random.default_rng(0).bytes(20_000))
    whole = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])  # an incomplete copy
    assert not widget.load_model(tmp_path / "cut.pt") and "damaged (incomplete copy?)" in warnings_shown[-1]
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:  # a zip, but neither a model nor a package
        z.writestr("notes.txt", "hello")
    assert not widget.load_model(tmp_path / "other.zip") and "not a napari-mia model file" in warnings_shown[-1]
    _trained(widget, qtbot)
    (tmp_path / "not a folder").write_text("a file where the folder should be")  # unwritable, even for root
    assert not widget.save_model(tmp_path / "not a folder" / "m.pt")
    assert "Cannot save the model to" in warnings_shown[-1] and "Choose another folder" in warnings_shown[-1]


def test_an_empty_labels_layer_is_refused_at_add(widget, nuclei_viewer, warnings_shown):
    nuclei_viewer.add_labels(np.zeros((4, 256, 256), np.uint16), name="nothing painted yet")
    assert not widget.add_pair("nuclei", "nothing painted yet")
    assert "Labels 'nothing painted yet' are empty (all background)" in warnings_shown[-1]
    assert widget.pairs == [] and widget.status.value in warnings_shown[-1]
    # one object in one frame is enough
    nuclei_viewer.layers["nothing painted yet"].data[2, 10:20, 10:20] = 5
    assert widget.add_pair("nuclei", "nothing painted yet")


def test_removing_layers_while_training_and_predicting(widget, nuclei_viewer, qtbot, warnings_shown):
    viewer, session = nuclei_viewer, widget.session
    viewer.add_image(np.asarray(viewer.layers["nuclei"].data)[0], name="other")
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=2, steps=3, patch=64)
    widget.start()
    viewer.layers.remove("nuclei labels")  # training works on copies: it goes on
    wait_idle(qtbot, session)
    assert type(session.last_event).__name__ == "TrainingFinished" and session.last_event.reason == "completed"
    assert widget.pairs == []  # the pair left with its layer
    widget.predict_combo.value = "other"
    assert widget.predict()
    viewer.layers.remove("other")
    qtbot.waitUntil(lambda: not session._predicting and not session.busy, timeout=60_000)
    assert "was removed before its prediction finished" in warnings_shown[-1]
    assert not [layer for layer in viewer.layers if "prediction" in layer.name]


def test_closing_the_viewer_while_training_stops_it(make_napari_viewer, qtbot):
    from tests.conftest import load_dsb

    viewer = make_napari_viewer()
    pairs = load_dsb(2)
    viewer.add_image(np.stack([p[0] for p in pairs]), name="nuclei")
    viewer.add_labels(np.stack([p[1] for p in pairs]).astype(np.uint16), name="nuclei labels")
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    session = widget.session
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=50, steps=20)
    widget.start()
    qtbot.waitUntil(lambda: type(session.last_event).__name__ == "IterationEnd", timeout=60_000)
    viewer.close()
    qtbot.waitUntil(lambda: not session.busy, timeout=60_000)  # napari quits the worker, or our Stop lands
    assert len(session.record.iterations) < 50 * 20


def test_soak_train_stop_resume_predict_14_times(widget, nuclei_viewer, qtbot):
    """14 cycles in one viewer; memory must settle, not grow with each cycle."""
    import psutil

    session, proc = widget.session, psutil.Process()
    nuclei_viewer.add_image(np.asarray(nuclei_viewer.layers["nuclei"].data)[0], name="one")
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=1, steps=3, patch=64, val_split=0.0)
    widget.controls["batch_size"].value = 2  # the cycles, not the model, are what is measured
    widget.predict_combo.value = "one"
    rss = []
    for cycle in range(14):
        widget.start()
        qtbot.waitUntil(lambda: type(session.last_event).__name__ == "IterationEnd", timeout=60_000)
        session.stop()
        wait_idle(qtbot, session)
        if session.can_resume:
            widget.resume_button.native.click()
            wait_idle(qtbot, session)
        assert widget.predict()
        qtbot.waitUntil(lambda: not session._predicting and not session.busy, timeout=60_000)
        if cycle >= 3:  # the cycles compared below: settle the garbage first (slow, so not in the warm-up)
            gc.collect()
        # Every training is a round whose weights the model keeps on purpose (packed: engine.rounds), so that
        # Restore round can bring it back: that is not a leak, and is left out of what is compared.
        kept = session.trainer.rounds.size_bytes() / 2**20
        rss.append(proc.memory_info().rss / 2**20 - kept)
    print("soak RSS MB per cycle, less the rounds kept:", [round(r) for r in rss],
          f"(the {len(session.trainer.rounds)} rounds: {kept:.0f} MB)")
    layers = [layer.name for layer in nuclei_viewer.layers]
    assert layers.count("one prediction") == 1  # updated in place, unedited, every cycle
    # A leak grows the memory at every cycle: the median growth per cycle over the last 9 cycles stays under
    # 35 MB, where a leak of one model (~55 MB for a resnet18 Unet), image stack or plot per cycle would put it
    # at 55 MB or more. A median, because within the whole suite (6 GB resident) the allocator once stepped up
    # by 217 MB in one cycle and then stayed flat (2026-12-08), which the comparison of two windows used before
    # took for a leak. Measured medians: 14 MB in that run, 3 and 18 MB alone (this code and the code before).
    growth = np.median(np.diff(rss[4:]))
    assert growth < 35, [round(r) for r in rss]
