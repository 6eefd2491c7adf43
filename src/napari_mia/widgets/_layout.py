"""How the Train Model dock is laid out, and where the Training Data dock goes (issue #13).

- The settings sections scroll; the actions (Start/Stop/Resume, Predict, Add prediction,
  Reset/Save/Load, the status line) are pinned below the scroll area, so they stay in reach
  whatever the dock's height, also when the Training Data dock takes half of the column.
- Long texts never widen the dock: combo boxes and the training-set list elide long layer
  names (64-character file stems are normal), value labels and the status line wrap, and a
  horizontal scroll bar appears rather than clipping if the dock is made narrower still.
- The Training Data dock opens below Train Model and the two share the column, Train Model
  keeping at least its actions and a few rows of settings.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import (QComboBox, QFrame, QLabel, QLayout, QListView, QScrollArea, QSizePolicy, QVBoxLayout,
                            QWidget)
from superqt import QCollapsible

# Combo boxes show about this many characters and elide the rest (the list shows whole names).
COMBO_CHARS = 12
# The widest the dock insists on being (its controls need about 380 px).
MAX_MIN_WIDTH = 460
# Rows of settings that stay visible above the pinned actions, however short the dock.
MIN_SCROLL_HEIGHT = 60
# The Train Model dock's share of the column when the Training Data dock opens below it.
TRAIN_SHARE = 0.5


def build_dock(widget: QWidget, sections: list, actions: QWidget, wrapped: list) -> QScrollArea:
    """Lay out `widget`: collapsible `sections` (title, box, expanded) in a scroll area, `actions`
    pinned below it. Sets ``widget.section_<first word>`` for each section and returns the scroll area.
    `wrapped`: labels whose text may be long (status, messages): they wrap instead of widening the dock."""
    inner = QWidget()
    lay = QVBoxLayout(inner)
    for title, box, expanded in sections:
        section = QCollapsible(title)
        section.addWidget(getattr(box, "native", box))
        (section.expand if expanded else section.collapse)(animate=False)
        lay.addWidget(section)
        setattr(widget, f"section_{title.split()[0].lower().replace('-', '_')}", section)
    lay.addStretch()
    scroll = _SettingsScroll()
    scroll.setObjectName("napari_mia_settings")
    scroll.setWidgetResizable(True)
    scroll.setWidget(inner)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    # Nothing is ever cut off: if the user makes the dock narrower than its controls, it scrolls.
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    scroll.setMinimumHeight(MIN_SCROLL_HEIGHT)
    pinned = getattr(actions, "native", actions)
    pinned.setObjectName("napari_mia_actions")
    pinned.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    _compact(pinned)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.setSpacing(0)
    outer.addWidget(scroll, stretch=1)
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    outer.addWidget(line)
    outer.addWidget(pinned)
    for label in wrapped:
        wrap(label)
    keep_narrow(widget)
    return scroll


class _SettingsScroll(QScrollArea):
    """Asks for the width its controls need once styled (napari's stylesheet comes when docked, so a width
    measured in __init__ is too small and clipped the dock), never more: long texts no longer widen them."""

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        if self.widget() is not None:
            hint.setWidth(min(self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                              + 2 * self.frameWidth(), MAX_MIN_WIDTH))
        return hint


def _compact(root: QWidget) -> None:
    """magicgui nests a margin in every container: the pinned rows get one thin margin around them all,
    so that the actions take as little of the dock's height as they can."""
    for layout in [root.layout(), *root.findChildren(QLayout)]:
        if layout is not None:
            layout.setContentsMargins(0, 0, 0, 0)
            layout.setSpacing(4)
    root.layout().setContentsMargins(8, 6, 8, 6)


def wrap(label) -> None:
    """A label that wraps at word boundaries and takes the width it is given: a long message (or a
    path without spaces, cut at the edge; its whole text is the tooltip) never widens the dock."""
    native = getattr(label, "native", label)
    native.setWordWrap(True)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    native.setMinimumWidth(0)
    native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # messages can be copied
    native.installEventFilter(_WholeTextTip(native))


class _WholeTextTip(QObject):
    """Hovering a wrapped label shows its whole text (magicgui sets the text without a signal, so the
    tooltip is taken when asked for)."""

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ToolTip and isinstance(obj, QLabel):
            obj.setToolTip(obj.text() if len(obj.text()) > 40 else "")
        return False


def keep_narrow(root: QWidget) -> None:
    """Combo boxes and lists under `root` elide long layer names instead of growing with them."""
    popups = set()
    for combo in root.findChildren(QComboBox):
        popups.add(id(combo.view()))
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARS)
        combo.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)  # DSB stems differ at both ends
    for view in root.findChildren(QListView):  # the training set; tables keep their scroll bars
        if id(view) not in popups:
            view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
            view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


def dock_beside(viewer, train_widget: QWidget, plot: QWidget, name: str = "Training Data"):
    """Dock `plot` below the Train Model dock, sharing the column so that Train Model keeps its actions
    and a few rows of settings in sight (at napari's default window size too)."""
    viewer.window.add_dock_widget(plot, name=name, area="right")
    dock = _dock_of(plot)  # the real QDockWidget (napari hands plugins a proxy)
    train_dock = _dock_of(train_widget)
    if dock is None or train_dock is None or train_dock.isFloating():
        return dock
    window = viewer.window._qt_window
    keep = train_widget.minimumSizeHint().height() + 40  # the dock's title bar
    column = train_dock.height() + dock.height()
    if column > 0:
        top = max(keep, int(column * TRAIN_SHARE))
        window.resizeDocks([train_dock, dock], [top, max(column - top, 1)], Qt.Orientation.Vertical)
    return dock


def _dock_of(widget: QWidget):
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    return parent


def caption_out_of_the_toasts(viewer) -> None:
    """The classification caption (the viewer's text overlay) at the top of the canvas: napari's
    notifications pop up at the bottom right, where the overlay sits by default."""
    viewer.canvas.overlays.text.position = "top_center"


def on_screen(widget: QWidget) -> bool:
    """`widget` is shown and wholly inside its window and every scroll area around it (for tests)."""
    if not widget.isVisible() or widget.height() < 10:
        return False
    rect = widget.rect().translated(widget.mapTo(widget.window(), widget.rect().topLeft()))
    if not widget.window().rect().contains(rect):
        return False
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            view = parent.viewport()
            vrect = view.rect().translated(view.mapTo(widget.window(), view.rect().topLeft()))
            if not vrect.contains(rect):
                return False
        parent = parent.parentWidget()
    return True


__all__ = ["build_dock", "wrap", "keep_narrow", "dock_beside", "caption_out_of_the_toasts", "on_screen"]
