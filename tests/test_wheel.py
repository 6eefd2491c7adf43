"""The package as a user installs it: the wheel built from this tree, installed into a new environment.

The source tree is out of sight there (no PYTHONPATH, no editable install), so the plugin's manifest, its sample
data and its command line are checked as pip leaves them. `make wheel-check` does the same from the sdist.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import wheel_check


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _, wheel = wheel_check.build(out, wheel_only=True)
    python = wheel_check.install(wheel, tmp_path_factory.mktemp("env") / "venv")
    return wheel, python


def test_wheel_holds_manifest_sample_data_and_licence(installed):
    wheel, _ = installed
    assert wheel_check.wheel_problems(wheel) == []


def test_installed_wheel_imports_validates_and_opens_its_sample(installed):
    _, python = installed
    # Importing every python_name of the manifest (napari, Qt and torch: a minute on a busy machine) is left to
    # `make wheel-check`; the wheel holding every module of src/ is checked above.
    result = wheel_check.probe(python, imports=False)
    venv = python.parents[1].resolve()
    # Imported from the environment's own copy, not from src/ of this checkout.
    assert Path(result["module"]).resolve().is_relative_to(venv)
    assert not Path(result["module"]).resolve().is_relative_to(wheel_check.ROOT / "src")
    assert result["manifest"] == "napari-mia"
    assert wheel_check.probe_problems(python, result) == []
    (sample,) = result["samples"]
    image, labels = sorted(sample["layers"], key=lambda la: la["type"])
    assert (image["type"], image["dtype"]) == ("image", "uint8")
    assert (labels["type"], labels["dtype"]) == ("labels", "uint16")
    assert image["shape"] == labels["shape"] and image["nonzero"] > 0 and labels["nonzero"] > 0


def test_installed_command_line_runs(installed):
    _, python = installed
    text = wheel_check.cli_help(python)
    assert text.startswith("usage: napari-mia")
    for command in ("train", "predict", "evaluate"):
        assert command in text
