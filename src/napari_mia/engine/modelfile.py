"""One file per model: weights plus every setting needed to predict.

A ``torch.save`` dict read back with ``weights_only=True`` (no code runs on
load). Writes go to a temporary file first so a full disk or a kill never
leaves a half-written model behind.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .errors import MiaError, ModelFileError
from .settings import Settings
from .starters import resolve

FORMAT = "napari-mia-model"
FILE_VERSION = 1
# An exported bioimage.io package (engine.export) keeps napari-mia's settings in its config under this format.
PACKAGE_FORMAT = "napari-mia-bioimageio"
PACKAGE_VERSION = 1
STATE_DICT_PREFIX = "net."  # MiaNetwork holds napari-mia's network as .net


def save(path: str | Path, state_dict: dict, settings: Settings, **extra: Any) -> Path:
    import torch  # lazy: see check_file

    path = Path(path)
    content = {"format": FORMAT, "file_version": FILE_VERSION, "settings": settings.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, **extra}
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            torch.save(content, f)
        os.replace(tmp, path)
    except OSError as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        reason = {28: "the disk is full", 13: "permission denied", 30: "the disk is read-only"}.get(
            e.errno, e.strerror or str(e))
        raise ModelFileError(f"Cannot save the model to {path}: {reason}. Choose another folder.") from e
    return path


PACKAGE_FILES = ("rdf.yaml", "bioimageio.yaml")


def _not_a_model(path: Path) -> ModelFileError:
    return ModelFileError(f"{path.name} is not a napari-mia model file, or it is damaged (incomplete copy?). "
                          "Save the model again, or choose another file.")


def check_file(path: str | Path) -> Path:
    """Refuse at once, without importing torch (seconds), what cannot be a model file: a missing path, or a file
    that is not a zip archive holding a torch pickle (``torch.save`` writes one) or a bioimage.io package. Reads
    only the archive's table of contents; ``load`` reads the rest. A starter's name (``nuclei``) is its installed
    file."""
    path = resolve(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:  # not a zip, or a truncated one
        raise _not_a_model(path) from e
    if not any(n.endswith("/data.pkl") or n == "data.pkl" or n in PACKAGE_FILES for n in names):
        raise _not_a_model(path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read a model file, or a bioimage.io package exported by napari-mia; settings come back as a ``Settings``."""
    path = check_file(path)
    import torch  # lazy: see check_file

    if zipfile.is_zipfile(path):  # torch.save files are zips too, but hold no rdf.yaml
        with zipfile.ZipFile(path) as z:
            package = any(n in PACKAGE_FILES for n in z.namelist())
        if package:
            return read_package(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, corrupt or foreign: same advice
        raise _not_a_model(path) from e
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelFileError(
            f"{path.name} is not a napari-mia model file (it may be weights from another program). "
            "Load a file saved by napari-mia."
        )
    if content.get("file_version", 0) > FILE_VERSION:
        raise ModelFileError(f"{path.name} was saved by a newer napari-mia. Update napari-mia to open it.")
    try:
        content["settings"] = Settings.from_dict(content["settings"])
    except (MiaError, KeyError) as e:
        raise ModelFileError(f"{path.name} holds settings this napari-mia cannot read: {e}") from e
    # Weights stored in half precision to stay small (the starters) are trained and predicted with in float32.
    content["state_dict"] = {k: v.float() if v.dtype == torch.float16 else v for k, v in content["state_dict"].items()}
    return content


# -- reading a package back (no bioimageio needed) -----------------------------
def is_package(path: str | Path) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)


def read_package(path: str | Path) -> dict[str, Any]:
    """A package exported by napari-mia -> the content of a model file (settings, state_dict, history)."""
    # Lazy: checking a file's table of contents (``check_file``) must not wait for torch.
    import torch
    import yaml  # lazy too: slow to import, and only a package needs it

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            rdf = next((n for n in ("rdf.yaml", "bioimageio.yaml") if n in names), None)
            if rdf is None:
                raise ModelFileError(f"{path.name} is a zip file but not a bioimage.io package (no rdf.yaml).")
            descr = yaml.safe_load(z.read(rdf))
            cfg = ((descr or {}).get("config") or {}).get("napari_mia")
            if not cfg or cfg.get("format") != PACKAGE_FORMAT:
                raise ModelFileError(
                    f"{path.name} is a bioimage.io package, but not one exported by napari-mia: napari-mia can only "
                    "load its own packages (it needs the settings it stores in them).")
            if cfg.get("file_version", 0) > PACKAGE_VERSION:
                raise ModelFileError(f"{path.name} was exported by a newer napari-mia. Update napari-mia to open it.")
            entry = ((descr.get("weights") or {}).get("pytorch_state_dict") or {})
            source = entry.get("source")
            if not source or source not in names:
                raise ModelFileError(f"{path.name} holds no pytorch_state_dict weights, which napari-mia loads.")
            state = torch.load(io.BytesIO(z.read(source)), map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, OSError, yaml.YAMLError, RuntimeError, EOFError) as e:
        raise ModelFileError(f"{path.name} is damaged (incomplete copy?): {e}. Export the model again.") from e
    prefix = cfg.get("state_dict_prefix", STATE_DICT_PREFIX)
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        settings = Settings.from_dict(cfg["settings"])
    except (MiaError, KeyError) as e:
        raise ModelFileError(f"{path.name} holds settings this napari-mia cannot read: {e}") from e
    return {"format": FORMAT, "file_version": FILE_VERSION, "settings": settings, "state_dict": state, "package": True,
            "history": [_numbers(h) for h in cfg.get("history") or []], "data": cfg.get("data") or None,
            # The rounds travel without their weights (engine.rounds): told by `napari-mia info`, not restorable.
            **{k: cfg[k] for k in ("rounds", "methods", "reproducibility") if cfg.get(k)}}


def _numbers(epoch: dict) -> dict:
    """An epoch's values as numbers: the package's YAML writes 2e-05 as YAML 1.2 does, which a YAML 1.1 reader
    (PyYAML) takes for a string."""
    def number(v):
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v
        return v

    return {k: number(v) for k, v in epoch.items()} if isinstance(epoch, dict) else epoch
