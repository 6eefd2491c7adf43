"""Issue #16, many channels, in the real dock: a two-channel image held as one layer (its channel axis first) or
as one layer per channel (as napari's ``add_image(..., channel_axis=0)`` splits it) trains and predicts; an image
of another channel count is refused in plain words and no layer changes."""

import numpy as np

from tests.widgets.conftest import snapshot, unchanged, wait_free, wait_idle


def _two_channel_layers(viewer):
    """Real nuclei (128 px, a fast test) and their inverted copy as a second stain, both ways napari holds them."""
    frame = np.asarray(viewer.layers["nuclei"].data)[0][:128, :128]
    labels = np.asarray(viewer.layers["nuclei labels"].data)[0][:128, :128]
    two = np.stack([frame, frame.max() - frame])
    viewer.add_image(two, channel_axis=0, name=["DAPI", "inverted"])  # one layer per channel
    viewer.add_image(two, name="two channels")  # one layer, a slider over its channels
    viewer.add_labels(labels, name="cells labels")
    viewer.add_image(frame, name="mono")
    return two


def _choose_other_channels(widget, image, others):
    widget.image_combo.value = image
    widget.channel_layers.value = others


def test_channel_mismatch_at_add_is_refused_in_plain_words(widget, nuclei_viewer, warnings_shown):
    _two_channel_layers(nuclei_viewer)
    snap = snapshot(nuclei_viewer)
    shown = [w.native for w in (widget.channel_axis, widget.channel_layers)]
    assert all(w.isHidden() for w in shown)  # Mono: nothing to choose
    widget.controls["channels"].value = 2
    assert not any(w.isHidden() for w in shown)
    # A single-channel layer for a 2-channel Input: refused, saying both counts and where the channels may be.
    assert not widget.add_pair("mono", "cells labels")
    assert "'mono' has 1 channel, but Input is 2 channels" in warnings_shown[-1]
    assert "choose the layers of the other channels under Other channels" in warnings_shown[-1]
    # The channels of the layer are along its first axis, not its last: that fix is said first, not Input.
    widget.channel_axis.value = "last"
    assert not widget.add_pair("two channels", "cells labels")
    assert warnings_shown[-1].startswith("napari-mia: 'two channels' has its 2 channels along its first axis (its "
                                         "shape is (2, 128, 128)): choose Channel axis: first (Data).")
    assert "Choose Input" not in warnings_shown[-1]
    # The same the other way round: an (H, W, 2) layer read with its channels first.
    nuclei_viewer.add_image(np.moveaxis(np.asarray(nuclei_viewer.layers["two channels"].data), 0, -1),
                            name="channels last")
    widget.channel_axis.value = "first"
    assert not widget.add_pair("channels last", "cells labels")
    assert "'channels last' has its 2 channels along its last axis" in warnings_shown[-1]
    assert "choose Channel axis: last" in warnings_shown[-1] and "128 channels" not in warnings_shown[-1].split(
        "(Data).")[0] and "Choose Input" not in warnings_shown[-1]
    nuclei_viewer.layers.remove("channels last")
    # Three layers joined for two channels; a layer of another size cannot be a channel.
    _choose_other_channels(widget, "DAPI", ["inverted", "mono"])
    assert not widget.add_pair("DAPI", "cells labels")
    assert "'DAPI + inverted + mono' has 3 channels (the layers 'DAPI', 'inverted', 'mono', one channel each)" \
        in warnings_shown[-1]
    _choose_other_channels(widget, "DAPI", ["nuclei"])
    assert not widget.add_pair("DAPI", "cells labels")
    assert "'nuclei' (4, 256, 256) cannot be a channel of 'DAPI' (128, 128)" in warnings_shown[-1]
    assert widget.pairs == [] and widget.controls["channels"].value == 2  # Input as the user chose it
    assert unchanged(nuclei_viewer, snap) and set(snap) == {layer.name for layer in nuclei_viewer.layers}


def test_two_channel_image_trains_and_predicts_from_one_layer_or_one_layer_per_channel(
        widget, nuclei_viewer, qtbot, warnings_shown):
    _two_channel_layers(nuclei_viewer)
    snap = snapshot(nuclei_viewer)
    widget.controls["channels"].value = 2
    _choose_other_channels(widget, "DAPI", ["inverted"])
    assert widget.add_pair("DAPI", "cells labels")
    assert widget.add_pair("two channels", "cells labels")  # Channel axis: first
    assert list(widget.pair_list.choices) == ["DAPI + inverted  ←  cells labels", "two channels  ←  cells labels"]
    items = widget.training_items()
    assert [it[0].shape for it in items] == [(128, 128, 2)] * 2 and np.array_equal(items[0][0], items[1][0])
    c = widget.controls
    c["label_mode"].value = "instances"
    c["epochs"].value, c["steps_per_epoch"].value, c["batch_size"].value = 1, 2, 2
    c["patch_width"].value = c["patch_height"].value = 64
    c["val_split"].value = 0.0
    assert widget.start()
    wait_idle(qtbot, widget.session)
    assert widget.session.last_event.reason == "completed"
    assert widget.session.trainer.settings.model.channels == 2
    # Predict: the Image brings its other channels along; a layer of channels gives a 2D prediction.
    for name in ("DAPI", "two channels"):
        widget.predict_combo.value = name
        assert widget.predict()
        wait_free(qtbot, widget.session)
        assert nuclei_viewer.layers[f"{name} prediction"].data.shape == (128, 128)
    # Another channel count at Predict: a plain message; no layer is made or changed.
    shown = len(warnings_shown)
    widget.channel_axis.value = "last"
    widget.predict_combo.value = "two channels"
    assert not widget.predict()
    assert "'two channels' has its 2 channels along its first axis" in warnings_shown[-1]
    assert "choose Channel axis: first" in warnings_shown[-1]
    failures = widget.session.failures
    widget.predict_combo.value = "mono"
    assert widget.predict()  # a layer read as it is: the engine's refusal comes back
    qtbot.waitUntil(lambda: widget.session.failures > failures and not widget.session._predicting, timeout=60_000)
    assert "'mono' has 1 channel but the model expects 2 channels" in warnings_shown[-1]
    assert widget.status.value in warnings_shown[-1] and len(warnings_shown) == shown + 2
    assert "mono prediction" not in nuclei_viewer.layers
    assert unchanged(nuclei_viewer, snap)
    # Predict all leaves out the layers that are another image's channels.
    assert widget.channel_members() == {"inverted"}
