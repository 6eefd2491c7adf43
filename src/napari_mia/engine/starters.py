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


def starter_path(name: str) -> Path:
    """The installed file of the starter `name`; a plain error when this installation lacks it."""
    starter = STARTERS[name]
    path = Path(str(resources.files("napari_mia").joinpath("starters", starter.file)))
    if not path.is_file():
        raise ModelFileError(f"The {starter.title} is not in this installation of napari-mia ({path} is missing). "
                             "Reinstall napari-mia from its wheel or repository, or choose a model file.")
    return path


def resolve(path: str | Path) -> Path:
    """`path`, or the starter's installed file when `path` names a starter and is not a file here."""
    path = Path(path)
    if str(path) in STARTERS and not path.exists():
        return starter_path(str(path))
    return path


def starter_named(path: str | Path) -> Starter | None:
    """The starter `path` stands for (its name, or its installed file), else None."""
    path = Path(path)
    for s in STARTERS.values():
        if str(path) == s.name and not path.exists():
            return s
        if path.name == s.file and path.parent.name == "starters" and path.parent.parent.name == "napari_mia":
            return s
    return None
