"""The README's main command (the demo), the sample data contribution and the manual's build."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_sample_data_is_contributed_through_the_manifest():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-mia")
    (sample,) = manifest.contributions.sample_data
    layers = pm.get_command(sample.command).exec()
    assert [(meta["name"], kind) for _, meta, kind in layers] == [("nuclei", "image"), ("nuclei labels", "labels")]
    images, labels = layers[0][0], layers[1][0]
    assert images.shape == labels.shape and images.ndim == 3 and labels.max() > 10  # real nuclei, one id each
    assert "CC0" in (ROOT / "src" / "napari_mia" / "sample_data" / "SOURCES.txt").read_text()


def test_headless_demo_trains_predicts_and_prints_the_figures(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "napari_mia.cli", "demo", "--minutes", "0.05", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "No display found" in out.stdout
    # The starter that ships with napari-mia first, on the held-out frame it never saw (left out of its training).
    starter = re.search(r"before any training here: foreground IoU ([0-9.]+), (\d+) nuclei found \((\d+) drawn",
                        out.stdout)
    assert starter, out.stdout
    assert float(starter.group(1)) > 0.7 and abs(int(starter.group(2)) - int(starter.group(3))) <= 3, out.stdout
    iou = float(re.search(r"Held-out image: foreground IoU ([0-9.]+), (\d+) nuclei found", out.stdout).group(1))
    assert 0 <= iou <= 1
    import tifffile

    pred = tifffile.imread(tmp_path / "prediction.tif")
    assert pred.dtype == np.uint16 and (tmp_path / "demo_model.pt").is_file()


def test_gui_demo_opens_ready_to_start(qtbot):
    from napari_mia.demo import open_demo_viewer

    viewer, widget = open_demo_viewer(show=False)
    try:
        assert {layer.name for layer in viewer.layers} == {"nuclei", "nuclei labels"}
        assert widget.pairs == [("nuclei", "nuclei labels")] and widget.start_button.enabled
        assert any("Train Model" in name for name in viewer.window._dock_widgets)
    finally:
        viewer.close()


def test_gui_demo_fits_the_sample_to_the_canvas_the_dock_leaves(qtbot):
    """The dock docks after the sample was shown: the sample is fit again to the narrower canvas (it was cut off at
    napari's default size), and the status line promises no fixed time."""
    from napari_mia.demo import open_demo_viewer

    viewer, widget = open_demo_viewer(show=True)
    try:
        qtbot.wait(500)
        zoom = viewer.camera.zoom
        viewer.reset_view()
        assert viewer.camera.zoom == pytest.approx(zoom, rel=0.01)
        assert "minutes" not in widget.status.value and "how long" in widget.status.value
    finally:
        viewer.close()


def _page_images() -> dict[str, list[str]]:
    docs = ROOT / "docs"
    return {p.name: re.findall(r"\]\(images/([\w.-]+\.png)\)", p.read_text()) for p in docs.glob("*.md")}


def test_every_screenshot_of_the_manual_comes_from_the_script():
    script = (ROOT / "docs" / "make_screenshots.py").read_text()
    made = set(re.findall(r"\"([\w-]+\.png)\"", script))
    used = {img for imgs in _page_images().values() for img in imgs}
    assert used and used <= made, used - made
    assert all((ROOT / "docs" / "images" / img).is_file() for img in used)


def test_the_manual_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "WARNING" not in out.stderr, out.stderr[-2000:]
    assert (tmp_path / "site" / "prediction" / "index.html").is_file()


def test_gui_demo_sets_the_measured_defaults(qtbot):
    """The settings benchmarks/demo_defaults.py measured (docs/benchmarks.md) reach the dock's controls, whatever
    the last session remembered (here: classification, sparse labels)."""
    from napari_mia.demo import DEMO_SETTINGS, open_demo_viewer
    from napari_mia.engine.settings import Settings
    from napari_mia.widgets import _remembered

    _remembered.save(Settings().update(task="classification", loss="cross_entropy", sparse=True,
                                       class_names=["a", "b"]), {})
    viewer, widget = open_demo_viewer(show=False)
    try:
        assert widget.task == "segmentation" and widget.controls["sparse"].value is False
        settings = widget.read_settings()
        flat = {**vars(settings.model), **vars(settings.data), **vars(settings.train)}
        assert \
            all(flat[k] == pytest.approx(v) if isinstance(v, float) else flat[k] == v for k, v in DEMO_SETTINGS.items())
    finally:
        viewer.close()
