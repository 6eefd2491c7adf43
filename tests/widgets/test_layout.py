"""Layout and looks of the docks in a shown napari window (issue #13: defects 2 and 11)."""

import numpy as np
import pytest

from napari_mia.widgets._layout import on_screen
from tests.widgets.conftest import quick, wait_idle

STEM = "0a7d30b252359a10fd298b638b90cb9ada3acced4e0c0e5a3692013f432ee4e9"  # a DSB file stem, 64 characters
# napari's window as it opens with no saved geometry (measured under Xvfb), and the size users report
DEFAULT_SIZE, LARGE_SIZE = (1089, 630), (1600, 1000)


def _actions(w):
    return [w.start_button, w.stop_button, w.predict_button, w.save_button, w.add_prediction_button]


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    """The sample in a shown window with the Train Model dock, as `make demo` opens it."""
    from napari_mia._sample_data import make_sample_data
    from napari_mia.widgets.training import TrainingWidget

    viewer = make_napari_viewer(show=True)
    for data, meta, kind in make_sample_data():
        getattr(viewer, f"add_{kind}")(data, **meta)
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    widget.add_pair("nuclei", "nuclei labels")
    return viewer, widget


def _settle(qtbot, viewer, size):
    viewer.window._qt_window.resize(*size)
    qtbot.wait(300)


def test_long_names_and_messages_do_not_widen_or_clip_the_dock(shown, qtbot):
    viewer, w = shown
    _settle(qtbot, viewer, DEFAULT_SIZE)
    width = w.minimumSizeHint().width()
    assert 300 <= width <= 460
    viewer.add_image(np.zeros((32, 32), np.uint8), name=STEM)
    mask = np.zeros((32, 32), np.uint16)
    mask[8:16, 8:16] = 1  # one object: empty labels are refused at Add
    viewer.add_labels(mask, name=STEM + "_mask")
    w.image_combo.value, w.labels_combo.value = STEM, STEM + "_mask"
    assert w.add_pair(STEM, STEM + "_mask")
    w.status.value = (f"Could not read /home/someone/microscopy/experiment_2024_11_23/{STEM}.tif: it is not an "
                      "image napari-mia can read. Convert it to TIFF first, then add it again.")
    qtbot.wait(300)
    assert w.minimumSizeHint().width() <= width + 2  # the dock does not grow with the texts
    inner = w.scroll.widget()
    assert inner.width() <= w.scroll.viewport().width()  # nothing cut off at the right
    assert not w.scroll.horizontalScrollBar().isVisible()
    # buttons keep their captions: each is at least as wide as its text
    for button in (w.add_button, w.remove_button, *_actions(w)):
        native = button.native
        assert native.width() >= native.fontMetrics().horizontalAdvance(native.text()), native.text()
    from qtpy.QtCore import QEvent, QPoint
    from qtpy.QtGui import QHelpEvent
    from qtpy.QtWidgets import QApplication

    QApplication.sendEvent(w.status.native, QHelpEvent(QEvent.Type.ToolTip, QPoint(2, 2), QPoint(2, 2)))
    assert w.status.native.toolTip().endswith("add it again.")  # the whole message, if the line cuts a path


@pytest.mark.parametrize("size", [DEFAULT_SIZE, LARGE_SIZE], ids=["napari default", "1600x1000"])
def test_actions_stay_in_reach_when_training_opens_the_plot(shown, qtbot, size):
    viewer, w = shown
    _settle(qtbot, viewer, size)
    assert all(on_screen(b.native) for b in _actions(w))  # when the dock opens, before any scrolling
    quick(w, epochs=1, steps=2, patch=64)
    w.start()
    qtbot.waitUntil(lambda: getattr(w.session, "plot_widget", None) is not None, timeout=60_000)
    qtbot.wait(300)
    plot = w.session.plot_widget
    assert viewer.window._qt_window.size().height() == size[1]  # the window did not grow to make room
    for b in _actions(w):
        assert on_screen(b.native) and b.native.height() >= 20, b.text
    assert plot.view.height() >= 100 and on_screen(plot.stop_button.native)
    wait_idle(qtbot, w.session)


def test_plot_follows_the_theme_and_hides_empty_axes(nuclei_viewer, widget, qtbot):
    from napari.utils.theme import get_theme

    plot = widget.open_plot_dock()
    plot.redraw()
    assert not any(ax.get_visible() for ax in plot.figure.axes) and plot.placeholder.get_visible()
    for theme in ("dark", "light"):
        nuclei_viewer.theme = theme
        plot.redraw()
        bg = get_theme(theme).background.as_hex()
        assert plot.figure.get_facecolor()[:3] == pytest.approx(tuple(int(bg[i:i + 2], 16) / 255 for i in (1, 3, 5)))
        assert plot.ax_loss.title.get_color() == get_theme(theme).text.as_hex()
    # a flat curve: no offset ("1e-17") above the axis
    from napari_mia.engine.events import IterationEnd

    for i in range(1, 6):
        widget.session._on_event(IterationEnd(1, i, i, 0.5 + 1e-17 * i, 0.25, 1e-3))
    plot.redraw()
    assert plot.ax_loss.get_visible() and not plot.ax_val_loss.get_visible()
    assert plot.ax_loss.yaxis.get_offset_text().get_text() == ""


def test_classification_caption_is_not_under_the_notifications(nuclei_viewer, widget):
    assert str(nuclei_viewer.canvas.overlays.text.position) in ("top_center", "CanvasPosition.TOP_CENTER")


def test_the_viewer_runs_on_pyqt6_without_napari_deprecation_notices(nuclei_viewer):
    import qtpy
    from napari.utils.notifications import notification_manager

    assert qtpy.API_NAME == "PyQt6"
    assert not any("PyQt5" in str(n.message) for n in notification_manager.records)


def test_a_short_plot_shows_one_readable_row(nuclei_viewer, widget):
    from napari_mia.engine.events import EpochEnd, IterationEnd

    plot = widget.open_plot_dock()
    widget.session._on_event(IterationEnd(1, 1, 1, 1.0, 0.1, 1e-3))
    plot._render(plot._snapshot(), (380, 240, 1.0))  # one value: a narrow axis
    for i in range(2, 9):
        widget.session._on_event(IterationEnd(1 + (i - 1) // 4, i, i, 1 / i, 0.1 * i, 1e-3))
    plot._render(plot._snapshot(), (380, 240, 1.0))
    assert [ax.get_visible() for ax in plot.figure.axes] == [True, True, False, False]
    for e in (1, 2):
        widget.session._on_event(EpochEnd(e, 0.5 / e, 0.3 * e, 0.6 / e, 0.25 * e, 1e-3, 10.0))
    plot._render(plot._snapshot(), (380, 240, 1.0))
    assert [ax.get_visible() for ax in plot.figure.axes] == [False, False, True, True]
    plot._render(plot._snapshot(), (380, 500, 1.0))
    assert all(ax.get_visible() for ax in plot.figure.axes)
    assert plot.ax_loss.get_xlim()[1] >= 8  # the axis grew with the values after the first, narrow, ones


# -- issue #25: the Results dock beside Train Model and Training Data, long names, public API only -------------
L1, L2 = f"{STEM} [1]", f"{STEM} [2]"


def _long_named_layers(viewer):
    """An image named by its file's stem and two labels layers of the same name, which napari numbers: their
    names differ only at their ends (L1, L2)."""
    frame = np.asarray(viewer.layers["nuclei"].data)[0]
    labels = np.asarray(viewer.layers["nuclei labels"].data)[0]
    for add in (viewer.add_image, viewer.add_labels, viewer.add_labels):
        add(frame if add == viewer.add_image else labels, name=STEM)
    assert {L1, L2} <= {layer.name for layer in viewer.layers}


def _window(widget):
    from napari_mia.widgets._layout import _dock_of

    return _dock_of(widget).window()


@pytest.mark.parametrize("size", [DEFAULT_SIZE, LARGE_SIZE], ids=["napari default", "1600x1000"])
def test_results_beside_train_model_and_training_data_keeps_the_window_on_screen(shown, qtbot, size):
    from napari_mia.widgets._layout import _dock_of

    viewer, w = shown
    _settle(qtbot, viewer, size)
    _long_named_layers(viewer)
    assert w.add_pair(STEM, L1)  # a long status line too
    plot = w.open_plot_dock()
    qtbot.wait(300)
    column = _dock_of(w).width()
    assert column <= 520  # Train Model's width, whatever the names
    _, results = viewer.window.add_plugin_dock_widget("napari-mia", "Results")
    qtbot.wait(500)
    results.layer_combo.value = L1
    results.image_combo.value, results.class_layer.value = STEM, L2
    assert results.measure()
    qtbot.wait(500)
    window = _window(w)
    assert (window.width(), window.height()) == size  # the window did not grow (off a 1000 px screen)
    for dock in (_dock_of(w), _dock_of(plot), _dock_of(results)):
        assert dock.width() <= column + 2, dock.windowTitle()  # the long names did not widen the column
    for b in _actions(w):
        assert on_screen(b.native), b.text
    for b in (results.measure_button, results.save_button, results.save_all_button):
        assert on_screen(b.native) and b.native.height() >= 20, b.text
    assert results.table.rowCount() > 0 and results.table.isVisible()
    assert results.scroll.viewport().height() >= 40  # its choices and the table scroll, in sight


def test_long_names_are_elided_in_the_middle_and_shown_whole_on_hover(shown, qtbot, warnings_shown):
    from napari_mia.widgets._layout import PAIR_ARROW, elide_pair, elided_text

    viewer, w = shown
    _settle(qtbot, viewer, DEFAULT_SIZE)
    _long_named_layers(viewer)
    combo = w.labels_combo.native
    pictures = []
    for name in (L1, L2):
        w.labels_combo.value = name
        qtbot.wait(50)
        shown_text = elided_text(combo)
        assert "…" in shown_text and shown_text.endswith(name[-6:])  # both ends of the name in sight
        pictures.append(combo.grab().toImage())
    assert pictures[0] != pictures[1]  # the two layers look different (Qt's own clipping drew the same pixels)
    # The training set list: each half of "image <- labels" keeps its ends, and the arrow.
    assert w.add_pair(STEM, L1)
    view = w.pair_list.native
    from qtpy.QtWidgets import QStyleOptionViewItem

    index = view.model().index(view.model().rowCount() - 1, 0)  # the pair just added
    option = QStyleOptionViewItem()
    option.rect = view.visualRect(index)
    view.itemDelegate().initStyleOption(option, index)
    drawn = option.fontMetrics.elidedText(option.text, view.textElideMode(), option.rect.width())
    assert PAIR_ARROW in drawn and drawn.endswith("[1]") and drawn.startswith(STEM[:4]), drawn
    assert elide_pair(f"a{PAIR_ARROW}b", option.fontMetrics, 500) == f"a{PAIR_ARROW}b"
    # A warning about long names: the toast shortens them in the middle; the status line keeps them whole.
    viewer.add_labels(np.zeros((8, 8), np.uint8), name=f"{STEM} small")
    assert not w.add_pair(STEM, f"{STEM} small")
    toast = warnings_shown[-1]
    assert STEM not in toast and "…" in toast and STEM[:10] in toast and STEM[-10:] in toast
    assert all(len(word) <= 40 for word in toast.split())
    assert STEM in w.status.value and "do not have the same size" in toast


def test_docking_uses_no_private_napari_attribute(nuclei_viewer, qtbot):
    """napari warns (FutureWarning) on a plugin's private access through its viewer proxy, and will refuse it."""
    import warnings

    from tests.widgets.conftest import open_dock

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        w = open_dock(nuclei_viewer, "plugin")
        w.open_plot_dock()
        _, results = nuclei_viewer.window.add_plugin_dock_widget("napari-mia", "Results")
        qtbot.wait(100)
        results.measure()
    private = [str(x.message) for x in seen if "Private attribute access" in str(x.message)]
    assert not private, private
