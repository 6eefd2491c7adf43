"""Rounds in a real viewer: test images kept aside, three rounds, a worse round said, Restore round, human minutes."""

import numpy as np

from tests.conftest import load_dsb
from tests.widgets.conftest import open_dock, quick, wait_free, wait_idle


def _predict_labels(widget, qtbot, name):
    layers_before = {id(layer) for layer in widget.viewer.layers}
    widget.predict_combo.value = name
    assert widget.predict()
    qtbot.waitUntil(lambda: not widget.session.busy and not widget.session._predicting, timeout=120_000)
    ours = [layer for layer in widget.viewer.layers if layer.metadata.get("napari_mia_image") == name]
    assert ours, layers_before
    return np.array(ours[-1].data)


def test_three_rounds_scored_on_test_images_worse_round_said_and_restored(make_napari_viewer, qtbot,
                                                                           warnings_shown):
    pairs = load_dsb(9)
    viewer = make_napari_viewer()
    stack = lambda idx, k: np.stack([pairs[i][k] for i in idx])  # noqa: E731
    viewer.add_image(stack([0, 1], 0), name="a")
    viewer.add_labels(stack([0, 1], 1).astype(np.uint16), name="a labels")
    viewer.add_image(stack([6, 7], 0), name="test")
    viewer.add_labels(stack([6, 7], 1).astype(np.uint16), name="test labels")
    viewer.add_image(pairs[8][0], name="u")
    # Deliberately wrong labels: the nuclei left as background and the background painted as small objects
    # (12 px squares, about the nuclei's size, so that training does not rescale these images away).
    truth = stack([2, 3, 4, 5], 1)
    yy, xx = np.mgrid[:256, :256]
    squares = (yy // 12) * 32 + xx // 12 + 1
    wrong = np.where(truth == 0, squares[None], 0).astype(np.uint16)
    viewer.add_image(stack([2, 3, 4, 5], 0), name="w")
    viewer.add_labels(wrong, name="w labels")
    widget = open_dock(viewer, "plugin")
    clock = widget.data.annotation
    fake = [0.0]
    clock.now = lambda: fake[0]

    assert widget.add_pair("a", "a labels") and widget.add_pair("test", "test labels")
    assert widget.mark_test([("test", "test labels")])
    assert "(test)" in widget.pair_list.choices[1]
    # The microscopist touches up "a labels": 4 strokes, at 0 s, 30 s, 200 s (after a pause) and 230 s: 1 active
    # minute (the pause does not count).
    layer = viewer.layers["a labels"]
    layer.brush_size = 3
    for t, y in ((0, 5), (30, 10), (200, 15), (230, 20)):
        fake[0] = t
        layer.paint((0, y, 5), 77)
    quick(widget, epochs=2, steps=12, patch=96, val_split=0.0)
    trained_on = []
    widget.session.event.connect(lambda ev: trained_on.append(ev) if type(ev).__name__ == "TrainingStarted" else None)

    # Round 1: 2 images.
    widget.start()
    wait_idle(qtbot, widget.session)
    book = widget.session.trainer.rounds
    assert [r.number for r in book.rounds] == [1] and trained_on[-1].num_train == 2
    r1 = book.rounds[0]
    assert r1.test["images"] == 2 and 0 <= r1.test["object_f1"] <= 1
    assert r1.human_minutes == 1.0 and r1.corrected == 0 and r1.objects > 20
    plot = widget.session.plot_widget
    assert plot.rounds.table.rowCount() == 1 and plot.stack.currentWidget() is plot.section_rounds
    assert "Test, 2 images: fg IoU" in plot.rounds.message.value

    # Round 2: a prediction, corrected, added to the training set.
    pred = _predict_labels(widget, qtbot, "u")
    layer = [la for la in viewer.layers if la.metadata.get("napari_mia_image") == "u"][-1]
    layer.data = np.where(pairs[8][1] > 0, pairs[8][1] + 1, 0).astype(layer.data.dtype)
    assert widget.add_prediction()
    widget.start()
    wait_idle(qtbot, widget.session)
    assert [r.number for r in book.rounds] == [1, 2] and book.rounds[1].corrected == 1
    assert trained_on[-1].num_train == 3 and book.rounds[1].human_minutes == 0.0
    round2_test = _predict_labels(widget, qtbot, "test")

    # Round 3: the wrong labels join; its test score drops, and the dock says so.
    assert widget.add_pair("w", "w labels")
    widget.start()
    wait_idle(qtbot, widget.session)
    r2, r3 = book.rounds[1], book.rounds[2]
    assert r3.test["object_f1"] < r2.test["object_f1"] - 0.1, (r2.test, r3.test)
    said = [m for m in warnings_shown if "Round 3 scores worse" in m]
    assert said and "Restore round" in said[0] and "Round 3 scores worse" in plot.rounds.message.value
    assert plot.rounds.table.rowCount() == 3 and plot.rounds.figure.axes[0].lines[0].get_ydata().size == 3
    # No test image was ever trained on: 2 + 1 + 4 images trained, none of them a test frame.
    assert trained_on[-1].num_train == 7
    assert not set(r3.data.values()) & set(r3.test_data)

    # Restore round 2: its predictions again.
    plot.rounds.round_combo.value = 2
    plot.rounds.restore_button.native.click()
    wait_free(qtbot, widget.session)
    assert "Round 2 restored" in plot.rounds.message.value
    again = _predict_labels(widget, qtbot, "test")
    assert ((again > 0) == (round2_test > 0)).mean() > 0.999
    assert pred.shape == (256, 256)
