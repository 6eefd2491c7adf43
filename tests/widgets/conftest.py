import numpy as np
import pytest

from tests.conftest import load_dsb


@pytest.fixture
def nuclei_viewer(make_napari_viewer):
    """A viewer with 4 real DSB frames and their human labels, as a microscopist would have."""
    pairs = load_dsb(4)
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([p[0] for p in pairs]), name="nuclei")
    viewer.add_labels(np.stack([p[1] for p in pairs]).astype(np.uint16), name="nuclei labels")
    return viewer


def wait_idle(qtbot, session, timeout=180_000):
    """Until the worker is done and its last event (or failure) has reached the main thread."""
    failures = session.failures

    def done():
        ended = type(session.last_event).__name__ == "TrainingFinished" or session.failures > failures \
            or session.state == "predicting" or session.last_event is None
        return session.state == "idle" and session.worker is None and ended

    qtbot.waitUntil(done, timeout=timeout)


def quick(widget, epochs=2, steps=3):
    """Small settings through the real controls."""
    c = widget.controls
    c["label_mode"].value = "instances"
    c["epochs"].value = epochs
    c["steps_per_epoch"].value = steps
    c["patch_width"].value = c["patch_height"].value = 128
    c["batch_size"].value = 4
    c["val_split"].value = 0.25


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
