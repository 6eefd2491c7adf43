"""A validation set chosen in the dock (issue #16, part 4): marked pairs are held out instead of a random split."""

import numpy as np

from tests.widgets.conftest import wait_idle


def _crop(viewer, name, frame, size):
    """The centre of a frame of the stack (it holds nuclei) as a 2D image with its labels: small, fast to train."""
    crop = slice(128 - size // 2, 128 + size // 2)
    viewer.add_image(np.array(viewer.layers["nuclei"].data[frame, crop, crop]), name=name)
    viewer.add_labels(np.array(viewer.layers["nuclei labels"].data[frame, crop, crop]), name=f"{name} labels")
    return (name, f"{name} labels")


def test_a_validation_pair_is_held_out(widget, nuclei_viewer, qtbot, warnings_shown):
    viewer, session, c = nuclei_viewer, widget.session, widget.controls
    trains, held = _crop(viewer, "trains", 2, 128), _crop(viewer, "held out", 3, 64)
    assert widget.add_pair(*trains) and widget.add_pair(*held)
    widget.pair_list.value = [widget._pair_text(held)]
    widget.validation_button.native.click()
    assert widget.validation == {held} and widget.pair_list.choices[1] == "held out  ←  held out labels  (validation)"
    assert not c["val_split"].enabled and "Not used now" in c["val_split"].tooltip
    # every pair for validation: refused, nothing changes
    widget.pair_list.value = list(widget.pair_list.choices)
    widget.validation_button.native.click()
    assert "nothing would be left to train on" in warnings_shown[-1] and widget.validation == {held}

    c["label_mode"].value = "instances"
    c["epochs"].value, c["steps_per_epoch"].value, c["batch_size"].value = 1, 1, 2
    c["patch_width"].value = c["patch_height"].value = 64
    seen = []
    session.event.connect(seen.append)
    assert widget.start()
    wait_idle(qtbot, session)
    started = [e for e in seen if type(e).__name__ == "TrainingStarted"][0]
    assert (started.num_train, started.num_val) == (1, 1)  # no random split: the marked pair validates
    assert [s.name for s in session.trainer.validation_sources] == ["held out"]
    assert [e.val_metric is not None for e in seen if type(e).__name__ == "EpochEnd"] == [True]
    assert "validation" in widget.status.value or "Training finished" in widget.status.value

    # the mark leaves with its pair: removed and added again, the pair trains; a deleted layer takes it along
    widget.pair_list.value = [widget._pair_text(held)]
    widget.remove_button.native.click()
    assert widget.validation == set() and c["val_split"].enabled
    assert widget.add_pair(*held) and widget.validation == set()
    assert widget.mark_validation([held]) and widget.validation == {held}
    del viewer.layers["held out labels"]
    assert widget.pairs == [trains] and widget.validation == set() and c["val_split"].enabled


def test_classification_holds_out_the_images_marked_under_its_table(nuclei_viewer, warnings_shown):
    from tests.widgets.conftest import docked

    w = docked(nuclei_viewer, "Image classification", steps=1, patch=64)
    nuclei_viewer.add_image(np.array(nuclei_viewer.layers["nuclei"].data[0]), name="one")
    table = w.class_table
    assert w.add_class_image("nuclei") and w.add_class_image("one")
    table.assign(0, rows=[0, 1, 2, 3])
    table.assign(1, rows=[4])
    table.table.selectRow(4)
    table.validation_button.click()
    assert table.table.item(4, 0).text() == "one (validation)" and not w.controls["val_split"].enabled
    assert [it[2] for it in w.training_items()] == ["nuclei"] and [it[2] for it in w.validation_items()] == ["one"]
    table.table.selectAll()
    table.validation_button.click()  # every image: refused
    assert "nothing would be left to train on" in warnings_shown[-1] and table.validation == {"one"}
    del nuclei_viewer.layers["one"]  # the mark leaves with the layer
    assert table.validation == set() and w.controls["val_split"].enabled
