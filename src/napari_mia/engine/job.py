"""A training job: one folder that holds what the dock's Start would train on, for another machine.

    write_job(folder, items, settings, val_items)   # the dock's Export training job
    napari-mia train --job folder --out model.pt     # on the server (or under torchrun)

Every file is in the form the command line already reads, so the folder also trains with the ordinary
options (README.md spells them out): the images as TIFF, channels last (``--images``), the targets as
the application writes them (``--masks`` / ``--points`` / ``--classes``, ``Application.write_job_targets``),
reviewed regions (``--regions``), the images held out for validation (``--val-images`` and the targets'
``--val-*``), and the settings as a normal ``--config`` file. job.json says which option reads which file.

No Qt here; the layers are never touched (the items are copies).
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Sequence

from .. import __version__
from . import applications
from .errors import DataError, JobFolderError
from .job_files import FileNames

JOB_FILE = "job.json"
SETTINGS_FILE = "settings.yaml"
README_FILE = "README.md"
MODEL_FILE = "model.pt"
TRAIN_DIR, VALIDATION_DIR, WEIGHTS_DIR = "train", "validation", "weights"
# job.json's "format": a reader refuses a newer one rather than misreading it
FORMAT = 1


def write_job(folder: str | Path, items: Sequence[tuple], settings, val_items: Sequence[tuple] | None = None) -> Path:
    """Write a training job into `folder` (new, or empty) and return it.

    `items`: what Start trains on (the dock's ``training_items``: copied arrays, with names and reviewed
    regions); `val_items`: the images held out for validation, in the same form (None or []: the settings'
    validation split holds some out at random). `settings`: the dock's, written as settings.yaml.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise JobFolderError(f"{folder} already exists and is not empty: choose a new folder (or an empty one) "
                             "for the training job, so that nothing in it is overwritten.")
    if not items:
        raise DataError("There is nothing to train on: add images to the training set first.")
    app = applications.for_settings(settings)
    settings = settings.copy()
    # The other machine has its own GPUs: it picks its device itself (--device chooses another).
    settings.train.device = "auto"
    names = FileNames()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JobFolderError(f"Cannot create the folder {folder}: {e.strerror or e}.") from e
    files: dict[str, str] = {}
    for option, path in app.write_job_targets(items, folder / TRAIN_DIR, settings, names).items():
        files[f"--{option}"] = f"{TRAIN_DIR}/{path}"
    if val_items:
        # The command line reads the validation images' targets only (no regions): they are scored whole.
        val = [tuple(it[:5]) for it in val_items]
        for option, path in app.write_job_targets(val, folder / VALIDATION_DIR, settings, names).items():
            if option != "regions":
                files[f"--val-{option}"] = f"{VALIDATION_DIR}/{path}"
    weights = settings.model.weights_path
    if settings.model.pretrained and weights:
        # The encoder's ImageNet weights on this machine travel with the job (the path would not exist there).
        source = Path(weights)
        if not source.is_file():
            raise JobFolderError(f"The ImageNet weights file {source} (Settings: weights) does not exist: choose "
                                 "it again, or train without pretrained weights.")
        (folder / WEIGHTS_DIR).mkdir(exist_ok=True)
        shutil.copy2(source, folder / WEIGHTS_DIR / source.name)
        files["--weights"] = f"{WEIGHTS_DIR}/{source.name}"
        settings.model.weights_path = None
    settings.save(folder / SETTINGS_FILE)
    files["--config"] = SETTINGS_FILE
    values: dict[str, object] = {"--task": app.name, "--channels": settings.model.channels}
    if settings.model.channels > 1:
        values["--channel-axis"] = -1  # written channels last, whatever the count
    if settings.data.sparse:
        values["--sparse"] = True
    count = {TRAIN_DIR: len(_listed(folder / TRAIN_DIR)),
             VALIDATION_DIR: len(_listed(folder / VALIDATION_DIR)) if val_items else 0}
    manifest = {"napari_mia_job": FORMAT, "napari_mia_version": __version__, "task": app.name,
                "sparse": bool(settings.data.sparse), "channels": settings.model.channels,
                "images": count, "files": files, "values": values}
    (folder / JOB_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / README_FILE).write_text(readme(folder, manifest))
    return folder


def _listed(where: Path) -> list[Path]:
    images = where / "images"
    return sorted(images.iterdir()) if images.is_dir() else []


def read_job(folder: str | Path) -> dict:
    """job.json of a job folder; JobFolderError if `folder` is not one."""
    folder = Path(folder)
    path = folder / JOB_FILE
    if not path.is_file():
        raise JobFolderError(f"{folder} is not a training job: it has no {JOB_FILE}. Give the folder written by the "
                             "Train Model dock's Export training job.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise JobFolderError(f"{path} cannot be read ({e}): export the training job again.") from e
    if not isinstance(manifest, dict) or "files" not in manifest:
        raise JobFolderError(f"{path} is not a napari-mia training job: export the training job again.")
    if int(manifest.get("napari_mia_job", 0)) > FORMAT:
        raise JobFolderError(f"{folder} was written by a newer napari-mia ({manifest.get('napari_mia_version')}): "
                             "update napari-mia on this machine.")
    return manifest


def job_arguments(folder: str | Path) -> dict[str, object]:
    """The ``train`` options a job stands for, as argparse names them (dest -> value; files as paths)."""
    folder = Path(folder)
    manifest = read_job(folder)
    out: dict[str, object] = {}
    for flag, rel in manifest["files"].items():
        path = folder / rel
        if not path.exists():
            raise JobFolderError(f"The training job {folder} is incomplete: {rel} is missing. Copy the whole folder.")
        out[_dest(flag)] = path
    for flag, value in manifest.get("values", {}).items():
        out[_dest(flag)] = value
    return out


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def commands(folder: Path, manifest: dict) -> tuple[str, str, str]:
    """The README's command lines: the job, under torchrun, and the same with the ordinary options."""
    name = shlex.quote(folder.name)  # a folder named "nuclei job" stays one argument
    job = f"napari-mia train --job {name} --out model.pt"
    ddp = f"torchrun --nproc-per-node 4 -m napari_mia.cli train --job {name} --out model.pt"
    options = [f"{flag} {name}/{rel}" for flag, rel in manifest["files"].items()]
    options += [flag if value is True else f"{flag} {value}" for flag, value in manifest["values"].items()]
    plain = "napari-mia train " + " \\\n    ".join(options) + " \\\n    --out model.pt"
    return job, ddp, plain


def readme(folder: Path, manifest: dict) -> str:
    job, ddp, plain = commands(folder, manifest)
    n, m = manifest["images"][TRAIN_DIR], manifest["images"][VALIDATION_DIR]
    val = f"{m} image(s) held out for validation ({VALIDATION_DIR}/)" if m else \
        "no images chosen for validation: the settings' validation split holds some out at random"
    return f"""# napari-mia training job: {manifest['task']}

Written by napari-mia {manifest['napari_mia_version']} (the Train Model dock's *Export training job*):
{n} training image(s) ({TRAIN_DIR}/), {val}. The settings are in {SETTINGS_FILE}.

## Run it

Copy this whole folder to the machine that trains (with napari-mia installed), then, from the folder
that holds it:

```
{job}
```

The model is written to `model.pt` after every epoch, and its training record to `model_record.csv`
beside it. Without `--out` the model goes into this folder ({MODEL_FILE}). Options given after `--job`
override the job's: e.g. `--epochs 50`, `--minutes 60`, `--device cuda:1`, `--resume` (after a crash).

Several GPUs on one machine:

```
{ddp}
```

The device is chosen on that machine (`auto`: its GPU if it has one).

## Bring the model back

Copy `model.pt` and `model_record.csv` back, then in napari: Train Model dock, Device section,
*Import model...*: the model and its settings load, and the Training Data dock shows its training record.

## The same with the ordinary options

Every file here is in the form `napari-mia train` reads:

```
{plain}
```
"""
