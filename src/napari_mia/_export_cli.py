"""``napari-mia export``: a model file -> a bioimage.io package (kept apart from cli.py's train/predict)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine.errors import MiaError

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


def add_export_parser(sub) -> None:
    e = sub.add_parser("export", help="export a model as a bioimage.io package (Fiji, QuPath, ilastik, BiaPy)",
                       epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, type=Path, help="model file written by train or the napari widget")
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


def _sample_image(channels: int):
    from importlib.resources import files

    from .engine.images import read_image

    if channels != 1:
        raise MiaError(f"The model takes {channels} channels: give an image like its training images with "
                       "--image FILE (the bundled sample is grayscale).")
    folder = files("napari_mia") / "sample_data"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith((".tif", ".png")) and "labels" not in p.name)
    if not names:
        raise MiaError("Give an image like the training images with --image FILE.")
    return read_image(Path(str(folder / names[0])))


def export(a) -> int:
    from .engine.images import fit_channels, read_image
    from .engine.export import export_package
    from .engine.trainer import Trainer

    trainer = Trainer.load(a.model)
    channels = trainer.settings.model.channels
    image = read_image(a.image) if a.image else _sample_image(channels)
    # Channels last, from where they are guessed to be (a (C, H, W) file of a multi-channel model).
    image = fit_channels(image, channels, a.image.name if a.image else "image")[0]
    if channels == 3 and image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # RGBA files lose their alpha, as in train and predict
    cite = []
    for c in a.cite:
        text, _, ref = c.rpartition("|")
        if not ref.strip() or not text.strip():
            raise MiaError(f"--cite '{c}': write the reference as 'TEXT|DOI' or 'TEXT|URL'.")
        cite.append((text.strip(), ref.strip()))
    formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    authors = [n.strip() for n in a.authors.split(";") if n.strip()] or ["napari-mia user"]
    print(f"Exporting {a.model.name} ({', '.join(formats)}) and testing it with bioimage.io's model test...",
          file=sys.stderr)
    out = export_package(trainer, a.out, image, formats, name=a.name, authors=authors, license=a.license,
                         cite=cite, description=a.description)
    print(f"Package written and tested: {out}")
    return 0
