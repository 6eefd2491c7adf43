"""Shared fixtures: real annotated microscopy from ../shared/data, small and fast."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from filelock import FileLock

# Tests never reach the network and never see a user's weight cache.
# huggingface_hub reads these once, at import: set them before anything imports it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="mia-hf-cache-")
# Nor the user's remembered Train Model settings (widgets/_remembered.py): a folder of their own here, and a new
# empty one for every test (`remembered_settings_apart`), so that every dock opens with the defaults.
os.environ["NAPARI_MIA_CONFIG_DIR"] = tempfile.mkdtemp(prefix="mia-config-")

# Under pytest-xdist (make test runs one worker per core), one thread per worker: torch would otherwise start as
# many threads as cores in every worker, and the workers would fight over the cores. Set before torch is
# imported; the command line tests' subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED = Path(os.environ.get("NAPARI_MIA_SHARED", Path(__file__).resolve().parents[1].parent / "shared")) / "data"
DSB = SHARED / "dsb2018_fluo"


def _dsb_names(n: int, size=(256, 256)) -> list[str]:
    import csv

    if not DSB.is_dir():
        pytest.skip("../shared/data/dsb2018_fluo is not available")
    rows = [r for r in csv.DictReader((DSB / "index.csv").open())
            if (int(r["height"]), int(r["width"])) == size and int(r["n_nuclei"]) >= 8]
    return [r["name"] for r in rows[:n]]


def load_dsb(n: int, size=(256, 256)):
    import tifffile

    return [(tifffile.imread(DSB / "images" / f"{k}.tif"), tifffile.imread(DSB / "masks" / f"{k}.tif"), k[:8])
            for k in _dsb_names(n, size)]


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder `name` of this test run, filled by `make(folder)` when a test first needs it.

    `make test` runs the tests in one process per core (pytest-xdist), and a session fixture is made in every
    process that needs it: tens of seconds each for a trained model. Made here instead, the processes share it:
    the first to need it makes it while the others wait, and every process (the maker too) reads it back from the
    folder, so a test sees the same thing whichever process made it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder; each worker's own is below it
    folder = root / f"made-once-{name}"
    with FileLock(root / f"made-once-{name}.lock"):
        if not (folder / "done").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a process killed while making it left
            folder.mkdir()
            make(folder)
            (folder / "done").touch()
    return folder


@pytest.fixture(autouse=True)
def remembered_settings_apart(monkeypatch, tmp_path_factory):
    """A dock that a test closes (or starts training in) remembers its settings here, for this test only."""
    monkeypatch.setenv("NAPARI_MIA_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(scope="session")
def dsb_pairs():
    """12 real 256x256 fluorescence images with human instance labels."""
    return load_dsb(12)


def small_settings(**kw):
    from napari_mia.engine.settings import Settings

    s = Settings()
    s.data.patch_width = s.data.patch_height = 96
    s.train.batch_size = 4
    s.train.steps_per_epoch = 6
    s.train.epochs = 1
    s.train.val_split = 0.25
    s.model.label_mode = "instances"  # the DSB masks hold one id per nucleus
    s.update(**kw)
    return s


@pytest.fixture(scope="session")
def trained(dsb_pairs, tmp_path_factory):
    """A Unet trained briefly in instance mode on `dsb_pairs[:8]`, and its training's events (shared by
    predictor/model file tests). Made once per run (`made_once`) and read back from its file with what resuming
    needs: the latest weights as the model, the best epoch's as the ones it predicts with."""
    from napari_mia.engine.trainer import Trainer

    def make(folder):
        # The predictor tests compare tiled with untiled passes at the images' own scale; their thresholds were
        # measured on this model: 40 steps at a constant rate, every image at its own scale. (40 cosine steps
        # leave it undecided on a quarter of some fields, where tiles and whole images then differ.)
        s = small_settings(label_mode="instances", epochs=4, steps_per_epoch=10, patch_width=128, patch_height=128,
                           same_object_size=False, lr_schedule="constant")
        # The augmentations the thresholds were measured with (the defaults until 2026-12-07).
        s.augment.zoom, s.augment.brightness_contrast, s.augment.gamma, s.augment.noise = 0.5, 0.5, 0.3, 0.2
        t = Trainer(s)
        events = list(t.train(dsb_pairs[:8]))
        t.save(folder / "trained.pt", include_optimizer=True)
        (folder / "events.pickle").write_bytes(pickle.dumps(events))

    folder = made_once(tmp_path_factory, "trained", make)
    return Trainer.load(folder / "trained.pt"), pickle.loads((folder / "events.pickle").read_bytes())


@pytest.fixture
def frozen():
    """Snapshot arrays, then assert they are byte-identical (inputs never touched)."""
    saved = []

    def take(*arrays):
        saved.extend((a, a.copy()) for a in arrays)
        return arrays

    yield take
    for a, copy in saved:
        assert a.dtype == copy.dtype and np.array_equal(a, copy, equal_nan=True)
