"""The Train Model dock remembers its settings between napari sessions (issue #16, part 5)."""

import logging
import os
from pathlib import Path

from napari_mia.engine.settings import Settings


def _dock(viewer):
    from napari_mia.widgets.training import TrainingWidget

    w = TrainingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train Model")
    return w


def test_settings_restored_in_a_new_dock_and_reset_to_defaults(make_napari_viewer, qtbot):
    config = Path(os.environ["NAPARI_MIA_CONFIG_DIR"])
    viewer = make_napari_viewer(show=True)
    first = _dock(viewer)
    first.application.value = "Object detection"
    defaults = first.read_settings()
    c = first.controls
    c["optimizer"].value, c["epochs"].value, c["rotate"].value = "sgd", 7, (-20.0, 20.0)
    c["object_size"].value, c["val_split"].value = 14.0, 0.3
    c["precision"].value = "off"  # the Device section's Mixed precision
    first.min_size.value = 12  # segmentation's Post-processing: kept by every model
    first.diameter.value, first.tta.value = 30.0, True
    used = first.read_settings()
    assert used.train.precision == "off" and defaults.train.precision == "auto"
    qtbot.waitUntil(first.isVisible)  # napari shows its docks with the window
    viewer.close()  # the dock closes with napari: its settings are remembered

    # the next napari session
    second = _dock(make_napari_viewer())
    assert second.application.value == "Object detection" and second.read_settings() == used
    assert second.controls["rotate"].value == (-20.0, 20.0) and second.min_size.value == 12
    assert second.diameter.value == 30.0 and second.tta.value
    assert Settings.load(config / "settings.yaml") == used  # a normal settings file: usable with --config
    second.defaults_button.native.click()
    assert second.read_settings() == defaults and second.application.value == "Object detection"
    assert second.diameter.value == 0.0 and not second.tta.value and "defaults" in second.status.value
    assert Settings.load(config / "settings.yaml") == defaults


def test_a_damaged_or_newer_settings_file_is_passed_over(make_napari_viewer, caplog):
    config = Path(os.environ["NAPARI_MIA_CONFIG_DIR"])
    viewer = make_napari_viewer()
    defaults = _dock(viewer).read_settings()
    (config / "prediction.json").write_text("{not json")
    unreadable = "settings.yaml are not used"
    for text, says in [("model: [unclosed", unreadable), ("version: 99\n", unreadable),
                       ("train:\n  no_such_setting: 1\n", unreadable), ("model:\n  channels: -1\n", unreadable),
                       ("model:\n  encoder: no-such-backbone\n", "do not fit the Train Model dock")]:
        (config / "settings.yaml").write_text(text)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="napari_mia"):
            w = _dock(viewer)
        assert w.read_settings() == defaults and w.diameter.value == 0.0
        assert says in caplog.text and "prediction.json are not used" in caplog.text
