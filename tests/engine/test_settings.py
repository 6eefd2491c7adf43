import json

import pytest

from napari_mia.engine.errors import SettingsError
from napari_mia.engine.settings import SETTINGS_VERSION, Settings


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path, suffix):
    s = Settings()
    s.update(architecture="FPN", encoder="resnet34", batch_size=7, rotate=(-20.0, 20.0), class_weights=[1.0, 2.0],
             class_weighting="manual", label_mode="classes", lr_schedule="plateau", plateau_patience=9)
    s.save(tmp_path / f"s{suffix}")
    back = Settings.load(tmp_path / f"s{suffix}")
    assert back == s
    assert back.augment.rotate == (-20.0, 20.0)


@pytest.mark.parametrize("key,value,words", [
    ("optimizer", "rmsprop", "optimizer must be one of"),
    ("downscale", 0.0, "Down scaling"),
    ("patch_width", 100, "multiple of 32"),
    ("val_split", 1.0, "Validation split"),
    ("hflip", 2.0, "probability"),
    ("architecture", "Transformer9000", "architecture must be one of"),
])
def test_bad_values_are_refused_in_plain_words(key, value, words):
    with pytest.raises(SettingsError, match=words):
        Settings().update(**{key: value})


def test_unknown_keys_and_newer_versions_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="Unknown setting"):
        Settings.from_dict({"train": {"bacth_size": 3}})
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"version": SETTINGS_VERSION + 1}))
    with pytest.raises(SettingsError, match="newer napari-mia"):
        Settings.load(p)
    p.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON/YAML"):
        Settings.load(p)


def test_instance_mode_has_three_network_classes():
    s = Settings().update(label_mode="instances")
    assert s.model.num_classes == 3
    assert Settings().model.num_classes == 2
