"""Export a trained model as a bioimage.io package (model spec 0.5), for Fiji, QuPath, ilastik, BiaPy, the zoo.

    from napari_mia.engine.export import export_package
    export_package(trainer, "nuclei.zip", image, formats=("pytorch_state_dict", "torchscript", "onnx"))

The package holds the weights in each format, the input's normalisation as the
spec's own preprocessing, softmax as postprocessing where it fits, test tensors
cut from a real image, a cover, a README from the training record, and every
napari-mia setting under ``config.napari_mia`` so that napari-mia can load the
package back (``read_package``, used by ``modelfile.load``). Down scaling and
the classifier's input size are baked into the network (``bioimageio_network``).

bioimageio.core and .spec are an optional extra, imported only here, when
exporting. An export is only reported as done after bioimageio.core's own
model test has passed on every weight format written, offline, on the CPU.
Reading a package back needs neither.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version as pkg_version
from pathlib import Path
from typing import Sequence

import numpy as np

from . import applications, export_parts
from .errors import MiaError, SettingsError
from .export_readme import cover as _cover, readme as _readme, record_summary as _record_summary
from .images import image_frames, normalize
from .methods import methods_paragraph, reproducibility
from .modelfile import PACKAGE_FORMAT, PACKAGE_VERSION, STATE_DICT_PREFIX
from .settings import Settings
from .tiling import STRIDE
from .trained_model import TrainedModel

WEIGHT_FORMATS = ("pytorch_state_dict", "torchscript", "onnx")
ONNX_OPSET = 17
MAX_TEST_SIZE = 256  # test tensors are cut to at most this many pixels a side
MIA_CITATION = ("Koerber N. MIA is an open-source standalone deep learning application for microscopic image "
                "analysis. Cell Reports Methods 3(7):100517 (2023)", "10.1016/j.crmeth.2023.100517")
PERCENTILES = (1.0, 99.8)  # napari-mia's percentile normalisation (data.normalize)


class ExportError(MiaError):
    """A model that cannot be exported, or a package that failed its test."""


def _require():
    try:
        # lazy: an optional extra, asked for only when exporting
        import bioimageio.core  # noqa: F401
        import bioimageio.spec  # noqa: F401
    except ImportError as e:
        raise ExportError(
            "Exporting to bioimage.io needs the optional packages bioimageio.core and bioimageio.spec, which are "
            "not installed. Install them with:  pip install 'napari-mia[bioimageio]'"
        ) from e


# -- sizes ------------------------------------------------------------------
def size_step(settings: Settings) -> int:
    """Input sizes are multiples of this: after down scaling, a multiple of 32 (what smp's networks need)."""
    d = settings.data.downscale
    for k in range(1, 17):
        s = STRIDE * k / d
        if abs(s - round(s)) < 1e-6:
            return int(round(s))
    raise ExportError(
        f"Down scaling {d:g} cannot be exported: bioimage.io tools cut images into tiles of fixed steps, and no "
        f"step of a reasonable size becomes a multiple of {STRIDE} pixels when scaled by {d:g}. Train with a "
        "down scaling such as 1, 0.75, 0.5 or 0.25 to export."
    )


def _test_crop(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """(H, W, C) -> the top-left crop the package's test tensors show: sizes min + k * step."""
    if applications.for_settings(settings).whole_image:
        return frame  # the class belongs to the whole image
    step = size_step(settings)
    h, w = frame.shape[:2]
    if min(h, w) < step:
        raise ExportError(f"The image for the package's test is {h} x {w} pixels: it must be at least "
                          f"{step} x {step}. Choose a larger image.")
    th = step * (min(h, max(MAX_TEST_SIZE, step)) // step)
    tw = step * (min(w, max(MAX_TEST_SIZE, step)) // step)
    return frame[:th, :tw]


# -- the network --------------------------------------------------------------
def _network_kwargs(s: Settings) -> dict:
    m, d = s.model, s.data
    return {"task": m.task, "architecture": m.architecture, "encoder": m.encoder, "in_channels": m.channels,
            "classes": m.num_classes, "downscale": float(d.downscale),
            "input_size": [d.patch_height, d.patch_width] if applications.get(m.task).whole_image else None}


def exported_network(model, settings: Settings):
    """napari-mia's model inside MiaNetwork (CPU, eval): what every weight format of the package runs."""
    from .bioimageio_network import MiaNetwork  # lazy: it imports torch, and napari-mia --help imports this module

    net = MiaNetwork(**_network_kwargs(settings))
    state = {STATE_DICT_PREFIX + k: v.detach().cpu() for k, v in model.state_dict().items()}
    net.load_state_dict(state)
    return net.eval()


# -- preprocessing, as the spec writes it and as numpy computes it -------------------
def _preprocessing(settings: Settings, dtype: np.dtype) -> list:
    # bioimage.io is an optional extra, imported only when exporting.
    from bioimageio.spec.model.v0_5 import (
        AxisId, EnsureDtypeDescr, EnsureDtypeKwargs, ScaleLinearDescr, ScaleLinearKwargs, ScaleRangeDescr,
        ScaleRangeKwargs, ZeroMeanUnitVarianceDescr, ZeroMeanUnitVarianceKwargs,
    )

    # Per image and channel: reduce over y and x only (batch and channel kept apart).
    yx = [AxisId("y"), AxisId("x")]
    steps: list = [EnsureDtypeDescr(kwargs=EnsureDtypeKwargs(dtype="float32"))]
    mode = settings.data.normalization
    if mode == "percentile":
        steps.append(ScaleRangeDescr(kwargs=ScaleRangeKwargs(axes=yx, min_percentile=PERCENTILES[0],
                                                             max_percentile=PERCENTILES[1])))
    elif mode == "minmax":
        steps.append(ScaleRangeDescr(kwargs=ScaleRangeKwargs(axes=yx, min_percentile=0.0, max_percentile=100.0)))
    elif mode == "standardize":
        steps.append(ZeroMeanUnitVarianceDescr(kwargs=ZeroMeanUnitVarianceKwargs(axes=yx)))
    elif np.issubdtype(dtype, np.integer):  # "none": integer images are divided by their type's maximum
        steps.append(ScaleLinearDescr(kwargs=ScaleLinearKwargs(gain=1.0 / float(np.iinfo(dtype).max))))
    return steps


def _preprocess(x: np.ndarray, settings: Settings, dtype: np.dtype) -> np.ndarray:
    """(N, C, H, W) float32 -> what the spec's preprocessing above gives (eps as in bioimageio.core)."""
    mode, eps = settings.data.normalization, 1e-6
    if mode in ("percentile", "minmax"):
        qs = PERCENTILES if mode == "percentile" else (0.0, 100.0)
        lo, hi = np.percentile(x, qs, axis=(2, 3), keepdims=True)
        return ((x - lo) / (hi - lo + eps)).astype(np.float32)
    if mode == "standardize":
        mean, std = x.mean(axis=(2, 3), keepdims=True), x.std(axis=(2, 3), keepdims=True)
        return ((x - mean) / (std + eps)).astype(np.float32)
    if np.issubdtype(dtype, np.integer):
        return (x * np.float32(1.0 / float(np.iinfo(dtype).max))).astype(np.float32)
    return x


def _postprocess(out: np.ndarray, settings: Settings) -> np.ndarray:
    return export_parts.for_task(settings.model.task).postprocess(out, settings)


def _identifiers(names: Sequence[str]) -> list[str]:
    """Class names as the spec's channel names (letters, digits, underscores), unique."""
    out: list[str] = []
    for n in names:
        ident = re.sub(r"\W+", "_", str(n)).strip("_") or "class"
        ident = ident if ident[0].isalpha() else f"c_{ident}"
        base, k = ident, 2
        while ident in out:
            ident, k = f"{base}_{k}", k + 1
        out.append(ident)
    return out


def _output_channel_names(s: Settings) -> list[str]:
    return export_parts.for_task(s.model.task).output_channel_names(s)


# -- export ---------------------------------------------------------------------
def _trained_model(source) -> TrainedModel:
    """The model handle to export: `source` itself, a Trainer's kept weights (settled, as Predict uses them), or
    a snapshot that holds a settled ``model``, its ``settings`` and ``history``."""
    if isinstance(source, TrainedModel):
        return source
    if source.model is None:
        raise SettingsError("There is no trained model to export yet: train or load a model first.")
    if hasattr(source, "trained_model"):
        return source.trained_model()
    return TrainedModel(source.model, source.settings, history=source.history,
                        data_size=getattr(source, "data_size", None))


def export_package(
    trained, out: str | Path, image: np.ndarray, formats: Sequence[str] = WEIGHT_FORMATS, *,
    name: str | None = None, authors: Sequence[str] = ("napari-mia user",), license: str = "CC-BY-4.0",
    cite: Sequence[tuple[str, str]] = (), description: str | None = None, rgb: bool | None = None,
    test: bool = True,
) -> Path:
    """Write a trained model (a ``TrainedModel``, see ``_trained_model``) as a bioimage.io package `out` (.zip)
    and test it; returns the path. The package holds the weights napari-mia predicts with, their normalisation
    statistics settled.

    `image`: a real image like the training images (raw, as loaded), cut into the test tensors and the
    cover. `cite`: (text, DOI or URL) pairs besides MIA's paper. The ``pytorch_state_dict`` weights are
    always written (napari-mia loads the package back from them). Raises ``ExportError`` with the reason
    when a format cannot be written or the model test fails; nothing is left at `out` then.
    """
    _require()
    import torch  # lazy: the export's optional extra is checked first

    handle = _trained_model(trained)
    model = handle.network
    unknown = [f for f in formats if f not in WEIGHT_FORMATS]
    if unknown:
        raise ExportError(f"Unknown weight format '{unknown[0]}': choose from {', '.join(WEIGHT_FORMATS)}.")
    formats = ["pytorch_state_dict"] + [f for f in WEIGHT_FORMATS[1:] if f in formats]
    out = Path(out)
    if out.suffix.lower() != ".zip":
        out = out.with_suffix(".zip")
    s = handle.settings.copy()
    app = applications.for_settings(s)
    step = 1 if app.whole_image else size_step(s)
    frame = image_frames(image, s.model.channels, "image", rgb=rgb)[0]
    crop = np.ascontiguousarray(_test_crop(frame, s))
    name = (name or out.stem.replace("_", " ")).strip()
    if len(name) < 5:  # the spec's minimum
        name = f"napari-mia {name}".strip()

    with tempfile.TemporaryDirectory(prefix="napari-mia-export-") as tmp:
        tmp = Path(tmp)
        net = exported_network(model, s)
        x_raw = crop.transpose(2, 0, 1)[None].astype(np.float32)  # (1, C, H, W)
        x = _preprocess(x_raw, s, crop.dtype)
        with torch.inference_mode():
            y = _postprocess(net(torch.from_numpy(x)).numpy(), s)
        np.save(tmp / "test_input.npy", x_raw)
        np.save(tmp / "test_output.npy", y)
        files = _write_weights(net, x, formats, tmp)
        shutil.copy(Path(__file__).with_name("bioimageio_network.py"), tmp / "napari_mia_network.py")

        # The cover and README: napari-mia's own prediction of the test image.
        # On the device the weights are on (a GPU, or the CPU for the dock's snapshot).
        pred = handle.with_settings(s).predictor(tile=None)
        result, shown = export_parts.for_task(s.model.task).predict(pred, crop)
        _cover(tmp / "cover.png", normalize(crop, "percentile"), shown, s, result)
        summary = _record_summary(handle.history, handle.data_size)
        rounds = handle.rounds.rounds
        methods = methods_paragraph(s, rounds, app.headline_scores)
        (tmp / "README.md").write_text(_readme(name, s, summary, formats, step, methods))

        descr = _description(s, tmp, files, name, authors, license, cite, description, step, crop.dtype, summary,
                             handle.history, rounds, methods)
        from bioimageio.spec import save_bioimageio_package  # lazy: an optional extra, only to export

        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial.zip")
        try:
            save_bioimageio_package(descr, output_path=partial)
        except Exception as e:  # noqa: BLE001 - any failure to write means the same to the user
            partial.unlink(missing_ok=True)
            raise ExportError(f"Cannot write the package {out}: {e}") from e
    if test:
        failures = test_package(partial, formats)
        if failures:
            partial.unlink(missing_ok=True)
            raise ExportError("The exported package failed bioimage.io's model test, so it was not saved: "
                              + "; ".join(failures))
    partial.replace(out)
    return out


def _write_weights(net, x: np.ndarray, formats: Sequence[str], tmp: Path) -> dict[str, Path]:
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    files = {"pytorch_state_dict": tmp / "weights.pt"}
    torch.save(net.state_dict(), files["pytorch_state_dict"])
    example = torch.from_numpy(x)
    if "torchscript" in formats:
        files["torchscript"] = tmp / "weights_torchscript.pt"
        try:
            with torch.no_grad():
                traced = torch.jit.trace(net, example, check_trace=False)
            traced.save(str(files["torchscript"]))
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"This network cannot be written as TorchScript: {str(e).splitlines()[0]}. "
                              "Export without torchscript (--formats pytorch_state_dict,onnx).") from e
    if "onnx" in formats:
        files["onnx"] = tmp / "weights.onnx"
        try:
            import onnx  # noqa: F401 - torch's exporter needs it
        except ImportError as e:
            raise ExportError("ONNX weights need the package onnx: pip install 'napari-mia[bioimageio]'.") from e
        dims = {0: "batch"} if net.input_size[0] else {0: "batch", 2: "y", 3: "x"}  # a classifier's size is set
        try:
            # The legacy (TorchScript-based) exporter: the default one of torch 2.14 needs onnxscript. One file,
            # no external data: these networks are far below ONNX's 2 GB limit.
            torch.onnx.export(net, (example,), str(files["onnx"]), dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["input0"], output_names=["output0"],
                              dynamic_axes={"input0": {0: "batch", 2: "y", 3: "x"}, "output0": dims},
                              external_data=False)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"This network cannot be written as ONNX: {str(e).splitlines()[0]}. Export "
                              "without onnx (--formats pytorch_state_dict,torchscript).") from e
    return files


def _description(s: Settings, tmp: Path, files: dict, name, authors, license, cite, description, step, dtype,
                 summary, history, rounds=(), methods=""):
    # lazy: torch takes seconds to import, and bioimage.io is an optional extra, imported only when exporting
    import torch
    from bioimageio.spec.model.v0_5 import (
        ArchitectureFromFileDescr, Author, AxisId, BatchAxis, ChannelAxis, CiteEntry, Config, FileDescr,
        Identifier, InputTensorDescr, IntervalOrRatioDataDescr, ModelDescr, OnnxWeightsDescr, OutputTensorDescr,
        ParameterizedSize, PytorchStateDictWeightsDescr, SizeReference, SpaceInputAxis, SpaceOutputAxis, TensorId, TorchscriptWeightsDescr,
        Version, WeightsDescr,
    )

    m = s.model
    inp = TensorId("input0")
    in_names = ["gray"] if m.channels == 1 else (["red", "green", "blue"] if m.channels == 3 else
                                                 [f"channel{i}" for i in range(m.channels)])
    app, parts = applications.get(m.task), export_parts.for_task(m.task)
    size = ParameterizedSize(min=STRIDE, step=1) if app.whole_image else ParameterizedSize(min=step, step=step)
    inputs = [InputTensorDescr(
        id=inp, description="raw image (any intensity range; normalised by the preprocessing)",
        axes=[BatchAxis(), ChannelAxis(channel_names=[Identifier(c) for c in in_names]),
              SpaceInputAxis(id=AxisId("y"), size=size), SpaceInputAxis(id=AxisId("x"), size=size)],
        test_tensor=FileDescr(source=tmp / "test_input.npy"),
        data=IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(s, dtype))]
    channels = ChannelAxis(channel_names=[Identifier(c) for c in _identifiers(_output_channel_names(s))])
    if app.whole_image:
        axes = [BatchAxis(), channels]
    else:
        axes = [BatchAxis(), channels,
                SpaceOutputAxis(id=AxisId("y"), size=SizeReference(tensor_id=inp, axis_id=AxisId("y"))),
                SpaceOutputAxis(id=AxisId("x"), size=SizeReference(tensor_id=inp, axis_id=AxisId("x")))]
    outputs = [OutputTensorDescr(
        id=TensorId("output0"), description=parts.output_description, postprocessing=parts.postprocessing(s),
        axes=axes, test_tensor=FileDescr(source=tmp / "test_output.npy"))]
    version = Version(torch.__version__.split("+")[0])
    weights = {"pytorch_state_dict": PytorchStateDictWeightsDescr(
        source=files["pytorch_state_dict"], pytorch_version=version,
        architecture=ArchitectureFromFileDescr(source=tmp / "napari_mia_network.py",
                                               callable=Identifier("MiaNetwork"), kwargs=_network_kwargs(s)),
        comment="napari-mia's network in MiaNetwork (napari_mia_network.py: needs torch and "
                "segmentation-models-pytorch only)")}
    if "torchscript" in files:
        weights["torchscript"] = TorchscriptWeightsDescr(source=files["torchscript"], pytorch_version=version,
                                                         parent="pytorch_state_dict", comment="torch.jit.trace")
    if "onnx" in files:
        weights["onnx"] = OnnxWeightsDescr(source=files["onnx"], opset_version=ONNX_OPSET,
                                           parent="pytorch_state_dict", comment="torch.onnx.export (legacy exporter)")
    cites = [CiteEntry(text=MIA_CITATION[0], doi=MIA_CITATION[1])]
    for text, ref in cite:
        ref = ref.strip()
        cites.append(CiteEntry(text=text, url=ref) if ref.startswith(("http://", "https://"))
                     else CiteEntry(text=text, doi=ref.removeprefix("doi:").removeprefix("https://doi.org/")))
    try:
        mia_version = pkg_version("napari-mia")
    except PackageNotFoundError:
        mia_version = "unknown"
    config = {"napari_mia": {
        "format": PACKAGE_FORMAT, "file_version": PACKAGE_VERSION, "napari_mia_version": mia_version,
        "state_dict_prefix": STATE_DICT_PREFIX, "settings": s.to_dict(),
        "class_names": list(m.class_names), "history": _plain(history),
        "data": summary["data"], "network": _network_kwargs(s)}}
    if rounds:  # the rounds that made it (without their weights), and the methods paragraph written from them
        config["napari_mia"].update(rounds=_plain([r.to_dict() for r in rounds]), methods=methods,
                                    reproducibility=_plain(reproducibility(rounds)))
    try:
        return ModelDescr(
            name=name, description=description or f"napari-mia {m.task} model ({m.encoder}), trained in napari",
            authors=[Author(name=a) for a in authors], cite=cites, license=license,
            documentation=FileDescr(source=tmp / "README.md"), covers=[FileDescr(source=tmp / "cover.png")],
            tags=["napari-mia", m.task, "2d", "pytorch", "segmentation-models-pytorch"],
            inputs=inputs, outputs=outputs, weights=WeightsDescr(**weights), config=Config(**config))
    except Exception as e:  # noqa: BLE001 - pydantic's validation error: first lines say what
        raise ExportError(f"The package description is not valid bioimage.io: {str(e)[:600]}") from e


def _plain(value):
    """JSON-safe copy (numpy numbers, tuples) for the YAML config."""
    return json.loads(json.dumps(value, default=float))


def test_package(path: str | Path, formats: Sequence[str] = WEIGHT_FORMATS) -> list[str]:
    """bioimageio.core's model test of each weight format, on the CPU; [] when all passed, else the reasons."""
    _require()
    from bioimageio.core import test_model  # lazy: an optional extra, only to export

    failures = []
    for fmt in formats:
        summary = test_model(str(path), weight_format=fmt, devices=["cpu"])
        if summary.status != "passed":
            errors = [f"{e.loc}: {e.msg}" for det in summary.details for e in det.errors][:3]
            failures.append(f"{fmt}: " + (" | ".join(errors) or summary.status))
    return failures
