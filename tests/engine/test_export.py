"""bioimage.io export (issue #17): packages of each application, their model test, their outputs, and the way back.

bioimageio.core's model test takes 15-40 s per weight format here, so all three formats are tested on the
segmentation package (exported through the command line, which always tests what it writes) and one format
on each of the others (exported with test=False, then tested on that format).
"""

import io
import zipfile

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("bioimageio.core")
ort = pytest.importorskip("onnxruntime")

from napari_mia.cli import main  # noqa: E402
from napari_mia.engine import export as E  # noqa: E402
from napari_mia.engine.errors import ModelFileError  # noqa: E402
from napari_mia.engine.images import normalize  # noqa: E402
from napari_mia.engine.predictor import Predictor  # noqa: E402
from napari_mia.engine.settings import Settings  # noqa: E402
from napari_mia.engine.trainer import Trainer  # noqa: E402
from tests.conftest import SHARED, load_dsb, small_settings  # noqa: E402

# Probabilities (0-1) and object maps / intensity: float32 networks on the same input, run by torch, TorchScript
# and ONNX Runtime, agree to about 1e-6; 1e-4 leaves room for other CPUs' kernels.
ATOL = 1e-4


def _rdf(path):
    with zipfile.ZipFile(path) as z:
        return yaml.safe_load(z.read("rdf.yaml")), z


def _read(path, name):
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def _onnx(path, rdf, x):
    sess = ort.InferenceSession(_read(path, rdf["weights"]["onnx"]["source"]), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _torchscript(path, rdf, x):
    net = torch.jit.load(io.BytesIO(_read(path, rdf["weights"]["torchscript"]["source"])), map_location="cpu")
    with torch.inference_mode():
        return net(torch.from_numpy(x)).numpy()


def _softmax(a):
    return torch.softmax(torch.from_numpy(a), 1).numpy()


def _normalised(crop, s):
    return normalize(crop, s.data.normalization).transpose(2, 0, 1)[None]


@pytest.fixture(scope="module")
def dsb3():
    return load_dsb(3)


@pytest.fixture(scope="module")
def seg(dsb3):
    s = small_settings(label_mode="instances", patch_width=64, patch_height=64, steps_per_epoch=2, val_split=0.34)
    t = Trainer(s)
    list(t.train([p[:2] for p in dsb3]))
    return t


def test_segmentation_package_all_formats_through_the_cli(seg, dsb3, tmp_path, capsys):
    model = seg.save(tmp_path / "nuclei.pt")
    from napari_mia.engine.rounds import Round
    from napari_mia.engine.trained_model import TrainedModel

    handle = TrainedModel.load(model)  # a model with a round, whose methods paragraph the package keeps
    handle.rounds.add(Round(number=1, images=2, validation_images=1, objects=30, seconds=12, device="cpu",
                            test={"images": 2, "fg_iou": 0.7, "object_f1": 0.6}), handle.network.state_dict())
    handle.save(model)
    import tifffile

    crop = dsb3[0][0][:128, :96]
    tifffile.imwrite(tmp_path / "a.tif", crop)
    out = tmp_path / "nuclei.zip"
    # Every format is written and passes bioimageio.core's test, or the command fails.
    assert main(["export", "--model", str(model), "--out", str(out), "--image", str(tmp_path / "a.tif"),
                 "--name", "DSB nuclei", "--authors", "A. Person;B. Person",
                 "--cite", "Caicedo et al. 2019|10.1038/s41592-019-0612-7"]) == 0
    rdf, _ = _rdf(out)
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    assert rdf["format_version"].startswith("0.5") and rdf["name"] == "DSB nuclei"
    assert [a["name"] for a in rdf["authors"]] == ["A. Person", "B. Person"]
    cfg = rdf["config"]["napari_mia"]
    assert Settings.from_dict(cfg["settings"]).to_dict() == seg.settings.to_dict()
    assert cfg["data"] == {"train_images": 2, "validation_images": 1} and len(cfg["history"]) == 1
    inp = rdf["inputs"][0]
    assert [a["type"] for a in inp["axes"]] == ["batch", "channel", "space", "space"]
    assert inp["axes"][2]["size"] == {"min": 32, "step": 32}
    assert inp["preprocessing"][1]["kwargs"]["axes"] == ["y", "x"]  # per image, as napari-mia normalises
    assert rdf["outputs"][0]["postprocessing"][0]["id"] == "softmax"
    names = set(zipfile.ZipFile(out).namelist())
    assert {"README.md", "cover.png", "napari_mia_network.py", "test_input.npy", "test_output.npy"} <= names
    readme = _read(out, "README.md").decode()
    assert "Validation iou" in readme
    assert "## Methods" in readme and "over 1 round of annotation" in readme and "object F1 of 0.600" in readme
    capsys.readouterr()
    assert main(["info", "--model", str(out)]) == 0
    told = capsys.readouterr().out
    assert "a bioimage.io package exported by napari-mia" in told and "Rounds: 1 (their weights are not in" in told
    assert "Methods:" in told and cfg["reproducibility"]["rounds"][0]["round"] == 1

    # The package's outputs are napari-mia's own probabilities.
    own = Predictor(seg.model, seg.settings, seg.device, tile=None).probabilities(crop[..., None])[None]
    expected = np.load(io.BytesIO(_read(out, "test_output.npy")))
    np.testing.assert_allclose(expected, own, atol=ATOL)  # the spec's preprocessing = napari-mia's normalisation
    x = _normalised(crop[..., None], seg.settings)
    np.testing.assert_allclose(_softmax(_onnx(out, rdf, x)), own, atol=ATOL)
    np.testing.assert_allclose(_softmax(_torchscript(out, rdf, x)), own, atol=ATOL)
    # Tiles of another size (a multiple of 32) run too.
    assert _onnx(out, rdf, x[..., :64, :32]).shape == (1, 3, 64, 32)

    # Back into napari-mia: same labels, same settings; predict --model takes the package; training continues.
    back = Trainer.load(out)
    assert back.settings.to_dict() == seg.settings.to_dict() and back.history == seg.history
    np.testing.assert_array_equal(back.predictor().predict(crop), seg.predictor().predict(crop))
    assert main(["predict", "--model", str(out), "--images", str(tmp_path), "--out", str(tmp_path / "pred"),
                 "--quiet"]) == 0
    assert (tmp_path / "pred" / "a.tif").is_file()
    events = list(back.train([p[:2] for p in dsb3]))
    assert events[-1].reason == "completed"


@pytest.fixture(scope="module")
def mbm():
    folder = SHARED / "mbm_bone_marrow_dots"
    if not folder.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from napari_mia.engine.images import read_image
    from napari_mia.engine.applications.heatmaps import read_points_csv

    pairs = read_points_csv(folder / "points.csv", folder / "images")[:2]
    out = []
    for f, pts in pairs:
        img = read_image(f)[:128, :128, :3]
        out.append((img, pts[(pts[:, 0] < 128) & (pts[:, 1] < 128)], f.name))
    return out


def test_detection_package_onnx(mbm, tmp_path):
    s = Settings().update(task="detection", loss="mse", channels=3, epochs=1, steps_per_epoch=2, patch_width=64,
                          patch_height=64, batch_size=2, val_split=0, object_size=12.0)
    t = Trainer(s)
    list(t.train(mbm, val=[]))
    image = mbm[0][0]
    out = E.export_package(t, tmp_path / "cells.zip", image, formats=["onnx"], test=False)
    assert E.test_package(out, ["onnx"]) == []
    rdf, _ = _rdf(out)
    assert set(rdf["weights"]) == {"pytorch_state_dict", "onnx"}
    assert rdf["outputs"][0]["postprocessing"][0]["kwargs"]["gain"] == pytest.approx(1 / 100)
    assert rdf["config"]["napari_mia"]["settings"]["data"]["object_size"] == 12.0
    heat = Predictor(t.model, t.settings, t.device, tile=None).probabilities(image)[None]
    x = _normalised(image, t.settings)
    np.testing.assert_allclose(_onnx(out, rdf, x) / 100.0, heat / 100.0, atol=ATOL)
    back = Trainer.load(out)
    assert back.settings.model.task == "detection"
    np.testing.assert_array_equal(back.predictor().detect(image), t.predictor().detect(image))


def test_classification_package_torchscript(dsb3, tmp_path):
    s = Settings().update(task="classification", loss="cross_entropy", metric="accuracy",
                          class_names=["sparse", "G2/M"], patch_width=64, patch_height=64, batch_size=2, epochs=1,
                          steps_per_epoch=1, val_split=0)
    t = Trainer(s)
    images = [p[0][:64, :64] for p in dsb3]
    list(t.train([(images[0], 0), (images[1], 1)], val=[]))
    out = E.export_package(t, tmp_path / "phenotype.zip", images[2], formats=["torchscript"], test=False)
    assert E.test_package(out, ["torchscript"]) == []
    rdf, _ = _rdf(out)
    assert [a["type"] for a in rdf["outputs"][0]["axes"]] == ["batch", "channel"]
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == ["sparse", "G2_M"]  # identifiers; names in config
    assert rdf["config"]["napari_mia"]["class_names"] == ["sparse", "G2/M"]
    own = t.predictor().classify(images[2])[0][1]
    x = _normalised(images[2][..., None], t.settings)
    np.testing.assert_allclose(_softmax(_torchscript(out, rdf, x))[0], own, atol=ATOL)
    back = Trainer.load(out)
    np.testing.assert_allclose(back.predictor().classify(images[2])[0][1], own, atol=1e-6)


def test_down_scaling_is_baked_in_or_refused(tmp_path):
    s = small_settings(downscale=0.5, patch_width=64, patch_height=64)
    assert E.size_step(s) == 64  # 64 px become 32 after down scaling
    assert E.size_step(small_settings(downscale=0.75)) == 128
    with pytest.raises(E.ExportError, match="Down scaling 0.37 cannot be exported"):
        E.size_step(small_settings(downscale=0.37))
    t = Trainer(s)
    t.model = __import__("napari_mia.engine.trained_model", fromlist=["build_model"]).build_model(s.model)
    net = E.exported_network(t.model, s)
    with torch.inference_mode():
        assert net(torch.zeros(1, 1, 128, 192)).shape == (1, 3, 128, 192)  # the output has the input's size
    # Traced at one size, TorchScript and ONNX scale other tiles and batches by their own size.
    files = E._write_weights(net, np.random.rand(1, 1, 128, 128).astype(np.float32), ["torchscript", "onnx"],
                             tmp_path)
    y = np.random.default_rng(0).random((2, 1, 192, 64), dtype=np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(y)).numpy()
        ts = torch.jit.load(str(files["torchscript"]))(torch.from_numpy(y)).numpy()
    on = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"]).run(None, {"input0": y})[0]
    assert ts.shape == on.shape == (2, 3, 192, 64)
    np.testing.assert_allclose(ts, ref, atol=ATOL)
    np.testing.assert_allclose(on, ref, atol=ATOL)


def test_plain_errors(monkeypatch, seg, tmp_path, dsb3):
    import sys

    monkeypatch.setitem(sys.modules, "bioimageio.core", None)
    with pytest.raises(E.ExportError, match=r"pip install 'napari-mia\[bioimageio\]'"):
        E.export_package(seg, tmp_path / "x.zip", dsb3[0][0])
    monkeypatch.undo()
    # A failing model test is a failed export, with the reason, and no package left behind.
    monkeypatch.setattr(E, "test_package", lambda path, formats: ["pytorch_state_dict: outputs differ"])
    with pytest.raises(E.ExportError, match="failed bioimage.io's model test.*pytorch_state_dict: outputs differ"):
        E.export_package(seg, tmp_path / "x.zip", dsb3[0][0][:64, :64], formats=["pytorch_state_dict"])
    assert not list(tmp_path.glob("*.zip"))
    with pytest.raises(E.ExportError, match="at least 32 x 32"):
        E.export_package(seg, tmp_path / "x.zip", dsb3[0][0][:20, :20], test=False)
    foreign = tmp_path / "other.zip"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("rdf.yaml", "type: model\nname: someone else's\n")
    with pytest.raises(ModelFileError, match="not one exported by napari-mia"):
        Trainer.load(foreign)
