"""Label next and the forecast, in a real viewer: the images the model has not learned from are listed, a
click shows the image or tile and outlines its most uncertain regions; the Rounds view draws the learning curve
and says what twice the labels would give."""

import numpy as np

from napari_mia.engine import applications, uncertainty
from napari_mia.engine.rounds import Round
from napari_mia.widgets.label_next import SHAPES
from napari_mia.widgets.plot import TrainingPlotWidget
from napari_mia.widgets.rounds import RoundsView
from napari_mia.workflows.ranking import order_items
from tests.widgets.conftest import snapshot, unchanged, wait_free

STARTER = "Nuclei (fluorescence) starter"


def test_label_next_lists_shows_and_outlines(widget, nuclei_viewer, qtbot, monkeypatch):
    monkeypatch.setattr(uncertainty, "RANK_TILE", 128)  # tiles of 256 px images, as of 768 px ones: less time
    session = widget.session
    widget.start_from.value = STARTER
    wait_free(qtbot, session)
    plot = TrainingPlotWidget(nuclei_viewer)
    nuclei_viewer.window.add_dock_widget(plot, name="Training Data")
    view = plot.label_next
    clean = nuclei_viewer.layers["nuclei"].data[0][:128, :128]  # small: the dock measures it at 8 views
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 60, clean.shape), 0, 255).astype(clean.dtype)
    nuclei_viewer.add_image(noisy, name="noisy")
    nuclei_viewer.add_image(nuclei_viewer.layers["nuclei"].data[1].copy(), name="large")
    session.labelled_names = {"nuclei"}  # as a round that trained on "nuclei" leaves it
    snap = snapshot(nuclei_viewer)

    view.order.value = "uncertainty"
    assert view.suggest()
    wait_free(qtbot, session)
    names = [u.name for u in view.items]
    assert "nuclei" not in names and names[0] == "noisy"
    assert sum(1 for u in view.items if u.name == "large" and u.tile is not None) == 4  # 2 x 2 tiles
    assert view.list.count() == len(view.items) == 6 and view.list.item(0).text().startswith("1. noisy")

    view.list.setCurrentRow(0)
    assert nuclei_viewer.layers["noisy"].visible and not nuclei_viewer.layers["large"].visible
    assert nuclei_viewer.layers.selection.active.name == "noisy"
    boxes = nuclei_viewer.layers[SHAPES].data
    assert 1 <= len(boxes) <= 5 and all(b.min() >= 0 and b.max() <= 128 for b in boxes)

    tile_row = next(i for i, u in enumerate(view.items) if u.name == "large" and u.tile is not None)
    nuclei_viewer.reset_view()
    whole_zoom = nuclei_viewer.camera.zoom
    view.list.setCurrentRow(tile_row)
    assert nuclei_viewer.layers["large"].visible and not nuclei_viewer.layers["noisy"].visible
    y0, x0, y1, x1 = view.items[tile_row].tile
    assert nuclei_viewer.camera.zoom > whole_zoom  # zoomed to the tile
    assert np.allclose(nuclei_viewer.camera.center[-2:], ((y0 + y1) / 2, (x0 + x1) / 2))
    assert [la.name for la in nuclei_viewer.layers].count(SHAPES) == 1  # replaced, not piled up

    ranked_names = [(u.name, u.tile) for u in view.items]
    view.order.value = "random"
    # The starter's round and none since: the seed of the random order is 1.
    expected = [(u.name, u.tile) for u in order_items(view._all, "random", seed=1)]
    assert [(u.name, u.tile) for u in view.items] == expected
    assert sorted(map(str, expected)) == sorted(map(str, ranked_names))
    assert view.message.value.startswith("At random") and view.list.count() == 6
    assert unchanged(nuclei_viewer, snap)  # the user's layers are as they were


class _Book:
    def __init__(self, rounds):
        self.rounds = rounds

    def has_weights(self, i):
        return False


class _Session:
    state = "idle"

    def __init__(self, rounds):
        self.trainer = type("T", (), {"rounds": _Book(rounds), "app": applications.get("segmentation")})()


def _round(number, objects, score):
    return Round(number=number, images=number, objects=objects, test={"object_f1": score, "fg_iou": 0.8, "images": 3},
                 test_data=["a", "b", "c"])


def test_the_rounds_view_draws_the_curve_and_says_the_forecast(qtbot):
    view = RoundsView(_Session([_round(1, 40, 0.55), _round(2, 80, 0.66)]))
    qtbot.addWidget(view)
    view.resize(400, 600)
    view.refresh(force=True)
    assert "after 3 rounds scored on the same test pairs" in view.forecast.value
    view.session.trainer.rounds.rounds += [_round(3, 160, 0.72), _round(4, 320, 0.75)]
    view.refresh(force=True)
    words = view.forecast.value
    assert words.startswith("Forecast: Twice the labelled objects (about 640) would raise object F1 on your "
                            "test pairs by about 0.0")
    ax = view.figure.axes[0]
    assert len(ax.lines) >= 2 and ax.get_xlim()[1] >= 640  # the curve runs on to twice the labels
