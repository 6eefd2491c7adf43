import numpy as np
import pytest

from tests.conftest import load_dsb, made_once


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test skipped while its fixtures are made (no ../shared data) has no call report, and napari's
    `make_napari_viewer` reads one as it tears the viewer down: the skip became 67 teardown errors on a machine
    without the data. The setup's report stands in for it."""
    report = yield
    if report.when == "setup" and report.skipped:
        item.rep_call = report
    return report


@pytest.fixture
def nuclei_viewer(make_napari_viewer):
    """A viewer with 4 real DSB frames and their human labels, as a microscopist would have."""
    pairs = load_dsb(4)
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([p[0] for p in pairs]), name="nuclei")
    viewer.add_labels(np.stack([p[1] for p in pairs]).astype(np.uint16), name="nuclei labels")
    return viewer


@pytest.fixture
def warnings_shown(monkeypatch):
    """Every napari notification the widgets raise (warnings and errors)."""
    import napari.utils.notifications as n

    shown = []
    for name in ("show_warning", "show_error"):
        original = getattr(n, name)
        monkeypatch.setattr(n, name, lambda msg, _o=original: (shown.append(msg), _o(msg))[1])
    return shown


OPENED = ["menu", "plugin"]


def open_dock(viewer, how: str):
    """The Train Model dock opened the two ways napari does it.

    "menu": as Plugins > napari-mia > Train Model does (the widget gets the viewer itself).
    "plugin": `viewer.window.add_plugin_dock_widget`, as `make demo` and scripts do: the widget then gets
    napari's PublicOnlyProxy of the viewer, whose layers are proxies too (issue #13, defect 1).
    """
    from napari_mia.widgets.training import TrainingWidget

    if how == "plugin":
        _, w = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
        assert type(w.viewer).__name__ == "PublicOnlyProxy"
        return w
    w = TrainingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train Model")
    return w


@pytest.fixture
def widget(nuclei_viewer, qtbot, request):
    """The Train Model dock, docked in the viewer as `make demo` does it (the proxy way, see `open_dock`).

    Tests that must hold both ways take `@both_ways`: every test twice would cost minutes of suite time.
    """
    return open_dock(nuclei_viewer, getattr(request, "param", "plugin"))


both_ways = pytest.mark.parametrize("widget", OPENED, indirect=True)


def snapshot(viewer) -> dict:
    """Copies of every layer's data, to check later that nothing of the user's was touched."""
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


def unchanged(viewer, snap) -> bool:
    """The layers of `snap` still in the viewer hold exactly the same data."""
    return all(np.array_equal(viewer.layers[k].data, v) for k, v in snap.items() if k in viewer.layers)


def wait_free(qtbot, session, timeout=180_000):
    """Until a load, GPU search or prediction has finished and its result reached the main thread."""
    qtbot.waitUntil(lambda: session.state == "idle" and not session._predicting, timeout=timeout)


def wait_idle(qtbot, session, timeout=180_000):
    """Until the worker is done and its last event (or failure) has reached the main thread."""
    failures = session.failures

    def done():
        ended = type(session.last_event).__name__ == "TrainingFinished" or session.failures > failures \
            or session.state == "predicting" or session.last_event is None
        return session.state == "idle" and session.worker is None and ended

    qtbot.waitUntil(done, timeout=timeout)


def quick(widget, epochs=2, steps=3, patch=128, val_split=0.25):
    """Small settings through the real controls.

    Tests that need a model but not a good one take `patch=64` (a quarter of the pixels of 128, in every step and
    in the BatchNorm settling before each validation and prediction), and `val_split=0.0` where they do not look at
    validation at all.
    """
    c = widget.controls
    c["label_mode"].value = "instances"
    c["epochs"].value = epochs
    c["steps_per_epoch"].value = steps
    c["patch_width"].value = c["patch_height"].value = patch
    c["batch_size"].value = 4
    c["val_split"].value = val_split


def stop_at(session, button, iteration: int) -> tuple[list, object]:
    """Record every event and click `button` (a Stop button) when `iteration` arrives."""
    from napari_mia.engine.events import IterationEnd

    seen = []

    def on_event(ev):
        seen.append(ev)
        if isinstance(ev, IterationEnd) and ev.iteration == iteration:
            button.native.click()

    session.event.connect(on_event)
    return seen, on_event


def docked(viewer, application: str, steps: int, patch: int, how: str = "menu"):
    """The Train Model dock on `application`, set through its controls for a short run without validation."""
    w = open_dock(viewer, how)
    w.application.value = application
    c = w.controls
    c["epochs"].value = 1
    c["steps_per_epoch"].value = steps
    c["patch_width"].value = c["patch_height"].value = patch
    c["batch_size"].value = 4
    c["val_split"].value = 0.0
    return w


# A user's new napari, in a fresh process (torch not yet imported): the dock opened, a file that is no model
# refused, Load Model clicked, the first Start (the Training Data dock opens), then a model built and run. One process for three tests (test_training_widget.py, test_first_hour.py): each fresh
# napari with torch costs ~20 s of the suite.
NEW_NAPARI = """
import sys, time
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

viewer = napari.Viewer(show=False)
t = time.perf_counter()
_, w = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
print("OPENED", "torch" in sys.modules, round(time.perf_counter() - t, 3))
import pathlib, tempfile, threading

class FirstImport:  # the thread that imports matplotlib first
    thread = None

    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" and FirstImport.thread is None:
            FirstImport.thread = threading.current_thread().name
        return None

sys.meta_path.insert(0, FirstImport())
bad = pathlib.Path(tempfile.mkdtemp()) / "notes.pt"
bad.write_text("a file that is no model")
t = time.perf_counter()
refused = w.load_model(str(bad))
print("REFUSED", refused, round(time.perf_counter() - t, 3), "torch" in sys.modules, "|", w.status.value)
ticks = []
timer = QTimer()
timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
timer.start(20)
t0 = time.perf_counter()
assert w.load_model(sys.argv[1])
returned = time.perf_counter() - t0
status = w.status.value
app = QApplication.instance()
while w.session.busy and time.perf_counter() - t0 < 150:
    app.processEvents()
    time.sleep(0.005)
took = time.perf_counter() - t0
ticks = [t for t in ticks if t0 <= t <= t0 + took]
gap = max(b - a for a, b in zip([t0] + ticks, ticks + [t0 + took]))
print("RESULT", round(returned, 3), round(took, 3), round(gap, 3), len(ticks), "torch" in sys.modules)
print("STATUS", status, "|", w.status.value)
sys.stdout.flush()
# The first Start: the Training Data dock opens on the main thread; matplotlib must not be imported there.
from napari_mia._sample_data import make_sample_data

for data, meta, kind in make_sample_data():
    getattr(viewer, f"add_{kind}")(data, **meta)
w.session.reset()  # a new model, in the sample's label mode
w.add_pair("nuclei", "nuclei labels")
c = w.controls
c["label_mode"].value = "instances"
c["epochs"].value, c["steps_per_epoch"].value, c["batch_size"].value, c["val_split"].value = 1, 1, 2, 0.0
c["patch_width"].value = c["patch_height"].value = 64
opened, open_plot_dock = [], w.open_plot_dock

def timed_open():
    t = time.perf_counter()
    plot = open_plot_dock()
    opened.append(time.perf_counter() - t)
    return plot

w.open_plot_dock = timed_open
assert w.start()
t0 = time.perf_counter()
while (w.session.busy or w.session.worker is not None) and time.perf_counter() - t0 < 150:
    app.processEvents()
    time.sleep(0.005)
print("STARTED", FirstImport.thread, round(opened[0], 3) if opened else None, type(w.session.last_event).__name__)
sys.stdout.flush()
# The order a user has: the viewer (Mesa may load libLLVM) first, torch and smp imported afterwards (here by the
# load's worker, as by the first Start's), then a model trained or run: without the guard in napari_mia._llvm
# the process dies with SIGSEGV here on llvmpipe (as under Xvfb).
import torch
from napari_mia._llvm import system_llvm_loaded
from napari_mia.engine.trained_model import build_model
from napari_mia.engine.settings import Settings

m = build_model(Settings().model, load_pretrained=False)
print("RAN", system_llvm_loaded(), tuple(m(torch.zeros(1, 1, 64, 64)).shape))
viewer.close()
"""


@pytest.fixture(scope="session")
def new_napari(tmp_path_factory):
    """NEW_NAPARI run once per test run (`made_once`): (completed process, its stdout lines by their first word)."""
    import json
    import subprocess
    import sys

    def make(folder):
        from napari_mia.widgets._session import import_engine_libraries

        import_engine_libraries()  # torch as the dock imports it (see napari_mia._llvm), before a model is made
        from napari_mia.engine.settings import Settings
        from napari_mia.engine.trainer import Trainer

        trainer = Trainer(Settings())
        trainer._ensure_model()
        model = trainer.save(folder / "m.pt")
        out = subprocess.run([sys.executable, "-c", NEW_NAPARI, str(model)], capture_output=True, text=True,
                             timeout=300)
        (folder / "run.json").write_text(json.dumps([out.args, out.returncode, out.stdout, out.stderr]))

    out = subprocess.CompletedProcess(*json.loads((made_once(tmp_path_factory, "new_napari", make) / "run.json")
                                                  .read_text()))
    lines = {line.split(" ", 1)[0]: line for line in out.stdout.splitlines() if line[:1].isupper()}
    return out, lines
