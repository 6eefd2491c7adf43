"""``napari-mia export``: a model file -> a bioimage.io package, tested before it is written."""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

from ..engine.errors import MiaError
from ..engine.export import export_package
from ..engine.images import fit_channels, read_image
from ..engine.trained_model import TrainedModel
from ..workflows.prediction import drop_alpha
from .options import add_model_option

EXPORT_EPILOG = """\
The package (bioimage.io model spec 0.5) runs in Fiji (deepImageJ), QuPath,
ilastik, BiaPy and the bioimage.io model zoo. It is written only after
bioimage.io's own model test has passed on every weight format, offline, on
the CPU. napari-mia loads it back (predict --model NAME.zip, Load Model).
Needs the optional packages: pip install 'napari-mia[bioimageio]'.

examples:
  napari-mia export --model nuclei.pt --out nuclei.zip --image imgs/a01.tif \\
      --name "DSB nuclei" --authors "Ada Lovelace;Alan Turing" --license CC-BY-4.0
  napari-mia export --model cells.pt --out cells.zip --formats pytorch_state_dict,onnx
"""


def add_parser(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("export", help="export a model as a bioimage.io package (Fiji, QuPath, ilastik, BiaPy)",
                       epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_option(e)
    e.add_argument("--out", required=True, type=Path, help="package to write (NAME.zip)")
    e.add_argument("--image", type=Path,
                   help="an image like the training images: the package's test input and cover (default: the "
                        "bundled sample nuclei, for 1-channel models)")
    e.add_argument("--formats", default="pytorch_state_dict,torchscript,onnx",
                   help="weight formats, comma separated: pytorch_state_dict (always written: napari-mia loads "
                        "it back), torchscript (QuPath, deepImageJ), onnx (ilastik, BiaPy, deepImageJ) "
                        "(default: all three)")
    e.add_argument("--name", help="the model's name (default: from --out)")
    e.add_argument("--description", help="one sentence on what the model does")
    e.add_argument("--authors", default="napari-mia user", help="authors' names, separated by ';'")
    e.add_argument("--license", default="CC-BY-4.0", help="SPDX license id of the model (default: CC-BY-4.0)")
    e.add_argument("--cite", action="append", default=[], metavar="TEXT|DOI_OR_URL",
                   help="a reference to cite, e.g. 'Smith et al. 2024|10.1000/xyz' (repeatable); MIA's paper is "
                        "always cited")
    return e


def _sample_image(channels: int):
    if channels != 1:
        raise MiaError(f"The model takes {channels} channels: give an image like its training images with "
                       "--image FILE (the bundled sample is grayscale).")
    folder = files("napari_mia") / "sample_data"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith((".tif", ".png")) and "labels" not in p.name)
    if not names:
        raise MiaError("Give an image like the training images with --image FILE.")
    return read_image(Path(str(folder / names[0])))


def _references(cite: list[str]) -> list[tuple[str, str]]:
    """--cite 'TEXT|DOI' -> [(text, reference)]."""
    refs = []
    for c in cite:
        text, _, ref = c.rpartition("|")
        if not ref.strip() or not text.strip():
            raise MiaError(f"--cite '{c}': write the reference as 'TEXT|DOI' or 'TEXT|URL'.")
        refs.append((text.strip(), ref.strip()))
    return refs


def run(a: argparse.Namespace) -> int:
    model = TrainedModel.load(a.model)
    channels = model.settings.model.channels
    image = read_image(a.image) if a.image else _sample_image(channels)
    # Channels last, from where they are guessed to be (a (C, H, W) file of a multi-channel model); RGBA files
    # lose their alpha, as in train and predict.
    image = drop_alpha(fit_channels(image, channels, a.image.name if a.image else "image")[0], channels)
    cite = _references(a.cite)
    weight_formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    authors = [n.strip() for n in a.authors.split(";") if n.strip()] or ["napari-mia user"]
    print(f"Exporting {a.model.name} ({', '.join(weight_formats)}) and testing it with bioimage.io's model test...",
          file=sys.stderr)
    out = export_package(model, a.out, image, weight_formats, name=a.name, authors=authors, license=a.license,
                         cite=cite, description=a.description)
    print(f"Package written and tested: {out}")
    return 0
