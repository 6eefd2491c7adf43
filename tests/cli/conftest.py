"""Fixtures shared by the command-line tests."""

import shutil

import pytest

from tests.conftest import DSB, _dsb_names


@pytest.fixture(scope="module")
def folders(request, tmp_path_factory):
    """images/ and masks/ of real DSB nuclei (256 x 256, 8 nuclei or more, same file names), one pair of folders
    per test module; the module says how many images with DSB_IMAGES (default 3)."""
    root = tmp_path_factory.mktemp("dsb")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for name in _dsb_names(getattr(request.module, "DSB_IMAGES", 3)):
        shutil.copy(DSB / "images" / f"{name}.tif", root / "images")
        shutil.copy(DSB / "masks" / f"{name}.tif", root / "masks")
    return root
