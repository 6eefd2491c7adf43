"""Starter models that ship inside the package: a trained generalist to predict with before any labelling, and to
fine-tune from (``--from nuclei``).

Nothing is downloaded, at run time or at install (lab firewalls): the weights are package data, made by
``benchmarks/make_starter.py`` with napari-mia's own ``train`` on CC0 images. A name is taken for a starter only
where no file of that name exists, so a user's own file called ``nuclei`` is still theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ModelFileError


@dataclass(frozen=True)
class Starter:
    name: str  # what --model and --from take
    title: str  # what the dock shows
    file: str  # in napari_mia/starters/


STARTERS = {s.name: s for s in [Starter("nuclei", "Nuclei (fluorescence) starter", "nuclei.pt")]}


def _installed(starter: Starter) -> Path:
    return Path(str(resources.files("napari_mia").joinpath("starters", starter.file)))


def _by_name(path: Path) -> Starter | None:
    """The starter `path` names, unless a file of that name is here (then it is the user's)."""
    return STARTERS.get(str(path)) if not path.exists() else None


def starter_path(name: str) -> Path:
    """The installed file of the starter `name`; a plain error when this installation lacks it."""
    starter = STARTERS[name]
    path = _installed(starter)
    if not path.is_file():
        raise ModelFileError(f"The {starter.title} is not in this installation of napari-mia ({path} is missing). "
                             "Reinstall napari-mia from its wheel or repository, or choose a model file.")
    return path


def resolve(path: str | Path) -> Path:
    """`path`, or the starter's installed file when `path` names a starter and is not a file here."""
    path = Path(path)
    starter = _by_name(path)
    return starter_path(starter.name) if starter else path


def starter_named(path: str | Path) -> Starter | None:
    """The starter `path` stands for (its name, or its installed file), else None."""
    path = Path(path)
    return _by_name(path) or next((s for s in STARTERS.values()
                                   if path.is_file() and path.resolve() == _installed(s).resolve()), None)
