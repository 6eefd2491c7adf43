"""How the Train Model dock is laid out, and where the Training Data dock goes.

- The settings sections scroll; the actions (Start/Stop/Resume, Predict, Add prediction,
  Reset/Save/Load, the status line) are pinned below the scroll area, so they stay in reach
  whatever the dock's height, also when the Training Data dock takes half of the column.
- Long texts never widen the dock: combo boxes and the training-set list elide long layer
  names in the middle (64-character file stems are normal, and "<stem>" and "<stem> [1]" differ
  only at the end), each half of an "image <- labels" pair on its own; value labels and the
  status line wrap, and a horizontal scroll bar appears rather than clipping if the dock is made
  narrower still. Hovering an elided name shows it whole.
- The Training Data dock opens below Train Model and the two share the column, Train Model
  keeping at least its actions and a few rows of settings. The Results dock scrolls in the
  same way (``build_scrolling``), so that the three docks fit napari's default window.
- Only public API: the main window is the docks' own ``window()`` (Qt's), never napari's
  private attributes, which a plugin's viewer proxy warns about and napari will remove.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import (QApplication, QComboBox, QDockWidget, QFrame, QLabel, QLayout, QListView, QMainWindow, QScrollArea,
                            QSizePolicy, QStatusBar, QStyle, QStyledItemDelegate, QStyleOptionComboBox,
                            QStylePainter, QToolTip, QVBoxLayout, QWidget)
from superqt import QCollapsible

# Combo boxes show about this many characters and elide the rest (the list shows whole names).
COMBO_CHARS = 12
# The widest the dock insists on being (its controls need about 380 px).
MAX_MIN_WIDTH = 460
# Rows of settings that stay visible above the pinned actions, however short the dock.
MIN_SCROLL_HEIGHT = 60
# The Train Model dock's share of the column when the Training Data dock opens below it.
TRAIN_SHARE = 0.5
# How the training-set list joins an image and its labels (the Data section's pair texts, sections/data.py).
PAIR_ARROW = "  ←  "
# A message among the pinned actions (the status line) shows this many lines at most; a longer one scrolls.
PINNED_LINES = 3


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
    return build_scrolling(widget, inner, actions, wrapped)


def build_scrolling(widget: QWidget, inner: QWidget, actions: QWidget, wrapped: list) -> QScrollArea:
    """Lay out `widget`: `inner` in a scroll area that asks for little height, `actions` pinned below it (see
    ``build_dock``); long texts elided or wrapped. Returns the scroll area."""
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
        native = getattr(label, "native", label)
        if pinned.isAncestorOf(native):
            _scroll_beyond(native, PINNED_LINES)
    keep_narrow(widget)
    return scroll


def _scroll_beyond(label: QLabel, lines: int) -> None:
    """Put a wrapped `label` into a scroll area as high as its text, up to `lines` lines: a long message (64-
    character names, paths) neither pushes the dock's height, and with it napari's window, off the screen nor
    loses its end."""
    layout = label.parentWidget().layout()
    index = layout.indexOf(label)
    box = _LinesScroll(lines)
    box.setWidget(label)  # takes the label out of its layout
    if index >= 0 and hasattr(layout, "insertWidget"):
        layout.insertWidget(index, box)
    else:
        layout.addWidget(box)


class _LinesScroll(QScrollArea):
    """A scroll area as high as its label's text, up to some lines; past them it scrolls."""

    def __init__(self, lines: int):
        super().__init__()
        self.lines = lines
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def _text_height(self) -> int:
        label = self.widget()
        width = max(self.viewport().width(), 50)
        high = label.heightForWidth(width) if label.wordWrap() else label.sizeHint().height()
        cap = self.lines * label.fontMetrics().lineSpacing() + 2 * label.margin() + 4
        return min(max(high, label.fontMetrics().lineSpacing()), cap)

    def sizeHint(self):  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        hint.setHeight(self._text_height())
        return hint

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        hint.setHeight(self._text_height())
        return hint

    def resizeEvent(self, event):  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.height() != self._text_height():
            self.updateGeometry()  # wrapped at the new width: as high as it now needs

    def viewportEvent(self, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.LayoutRequest:  # the label's text changed
            self.updateGeometry()
        return super().viewportEvent(event)


class _SettingsScroll(QScrollArea):
    """Asks for the width its controls need once styled (napari's stylesheet comes when docked, so a width
    measured in __init__ would be too small and clip the dock), never more: long texts do not widen them."""

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
    """Combo boxes and lists under `root` elide long layer names in the middle instead of growing with them
    (or clipping their ends); hovering an elided name shows it whole."""
    popups = set()
    for combo in root.findChildren(QComboBox):
        popups.add(id(combo.view()))
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARS)
        combo.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)  # DSB stems differ at both ends
        _install(combo, _ElidedCombo)
        _install(combo.view().viewport(), _WholeItemTip, combo.view())
    for view in root.findChildren(QListView):  # the training set; tables keep their scroll bars
        if id(view) not in popups:
            view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
            view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            if not isinstance(view.itemDelegate(), _PairDelegate):
                view.setItemDelegate(_PairDelegate(view))


def _install(widget: QWidget, kind, *args) -> None:
    """One event filter of `kind` on `widget` (keep_narrow may run again over the same widgets)."""
    name = f"_napari_mia_{kind.__name__}"
    if getattr(widget, name, None) is None:
        f = kind(widget, *args)
        setattr(widget, name, f)
        widget.installEventFilter(f)


def elided_text(combo: QComboBox) -> str:
    """The text a combo box shows: its current text, elided in the middle to the width of its field."""
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    return combo.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideMiddle, max(field.width() - 4, 0))


class _ElidedCombo(QObject):
    """Paints a combo box with its text elided in the middle (Qt cuts it off at the right: "<stem>" and
    "<stem> [1]" looked the same), and shows the whole text, with the combo's own tooltip, on hovering."""

    def eventFilter(self, combo, event):  # noqa: N802 - Qt's name
        if not isinstance(combo, QComboBox) or combo.isEditable():
            return False
        if event.type() == QEvent.Type.Paint:
            opt = QStyleOptionComboBox()
            combo.initStyleOption(opt)
            text = elided_text(combo)
            painter = QStylePainter(combo)
            painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
            opt.currentText = text
            painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)
            painter.end()
            return True
        if event.type() == QEvent.Type.ToolTip and elided_text(combo) != combo.currentText():
            tip = combo.currentText() + (f"\n\n{combo.toolTip()}" if combo.toolTip() else "")
            QToolTip.showText(event.globalPos(), tip, combo)
            return True
        return False


class _WholeItemTip(QObject):
    """A combo box's list of choices: hovering a name shows it whole."""

    def __init__(self, parent, view):
        super().__init__(parent)
        self.view = view

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ToolTip:
            index = self.view.indexAt(event.pos())
            if index.isValid() and index.data():
                QToolTip.showText(event.globalPos(), str(index.data()), self.view)
                return True
        return False


def elide_pair(text: str, metrics, width: int) -> str:
    """`text` as a list shows it in `width` pixels: elided in the middle; an "image <- labels" pair elided half by
    half, so that both names keep their ends and the arrow stays."""
    if metrics.horizontalAdvance(text) <= width or PAIR_ARROW not in text:
        return metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, width)
    left, right = text.split(PAIR_ARROW, 1)
    room = max(width - metrics.horizontalAdvance(PAIR_ARROW), 0)
    wl, wr = metrics.horizontalAdvance(left), metrics.horizontalAdvance(right)
    # the shorter half whole where it fits in half the room, the longer one in the rest
    a = wl if wl <= room // 2 else room - wr if wr <= room // 2 else room // 2
    e = Qt.TextElideMode.ElideMiddle
    left = metrics.elidedText(left, e, a)
    return left + PAIR_ARROW + metrics.elidedText(right, e, room - metrics.horizontalAdvance(left))


class _PairDelegate(QStyledItemDelegate):
    """The training-set list: each half of a pair elided on its own (``elide_pair``); hovering shows it whole."""

    def initStyleOption(self, option, index):  # noqa: N802 - Qt's name
        super().initStyleOption(option, index)
        style = option.widget.style() if option.widget is not None else QApplication.style()
        margin = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1) + 4  # as Qt's item text
        option.text = elide_pair(option.text, option.fontMetrics, option.rect.width() - margin)

    def helpEvent(self, event, view, option, index):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ToolTip and index.data():
            QToolTip.showText(event.globalPos(), str(index.data()), view)
            return True
        return super().helpEvent(event, view, option, index)


def dock_beside(viewer, train_widget: QWidget, plot: QWidget, name: str = "Training Data"):
    """Dock `plot` below the Train Model dock, sharing the column so that Train Model keeps its actions
    and a few rows of settings in sight (at napari's default window size too). If another dock is already
    below Train Model (Results), `plot` joins it as a tab: a third dock in the column would not fit."""
    train_dock = _dock_of(train_widget)
    others = [] if train_dock is None else _column(train_dock)
    viewer.window.add_dock_widget(plot, name=name, area="right", tabify=bool(others))
    dock = _dock_of(plot)  # the real QDockWidget (napari hands plugins a proxy)
    if dock is None or train_dock is None or train_dock.isFloating():
        return dock
    window = train_dock.window()  # the main window (Qt's public API; napari's own attribute is private)
    if not isinstance(window, QMainWindow):
        return dock
    if others:
        dock.raise_()
        return dock
    keep = train_widget.minimumSizeHint().height() + 40  # the dock's title bar
    column = train_dock.height() + dock.height()
    if column > 0:
        top = max(keep, int(column * TRAIN_SHARE))
        window.resizeDocks([train_dock, dock], [top, max(column - top, 1)], Qt.Orientation.Vertical)
    return dock


def _column(dock) -> list:
    """The other docks shown in `dock`'s area of the main window, tabs of one place counted once."""
    window = dock.window()
    if not isinstance(window, QMainWindow) or dock.isFloating():
        return []
    area = window.dockWidgetArea(dock)
    seen, out = {id(dock)}, []
    for d in window.findChildren(QDockWidget):
        if id(d) in seen or d.isFloating() or not d.isVisible() or window.dockWidgetArea(d) != area:
            continue
        tabs = window.tabifiedDockWidgets(d)
        seen.update(id(t) for t in (d, *tabs))
        if dock not in tabs:
            out.append(d)
    return out


def place_in_column(widget: QWidget, wanted: int) -> None:
    """A dock that napari stacked into a column without the room for it (`wanted` px for its widget, beside the
    other docks' minimum heights): a tab of the column's lowest other dock instead, shown. Its widget asks for
    hardly any height meanwhile, so that stacking it did not grow the window. The room is reckoned from the
    window, whose layout may not have given the new dock its place yet."""
    dock = _dock_of(widget)
    if dock is None or dock.isFloating():
        return
    window = dock.window()
    others = [d for d in _column(dock) if d.widget() is not None]
    if not isinstance(window, QMainWindow) or not others:
        return
    column = window.height()
    bars = [window.menuWidget(), window.findChild(QStatusBar)]
    column -= sum(b.height() for b in bars if b is not None and b.isVisible())
    for d in window.findChildren(type(dock)):  # docks above or below the central area take from the column
        if d.isVisible() and not d.isFloating() and window.dockWidgetArea(d) in (
                Qt.DockWidgetArea.TopDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea):
            column -= d.height()
    gap = window.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent, None, window)
    bar = dock.titleBarWidget()
    title = bar.sizeHint().height() if bar is not None else dock.fontMetrics().height() + 10  # the title bar
    need = sum(d.minimumSizeHint().height() + gap for d in others) + title + wanted
    below = max(others, key=lambda d: d.mapTo(window, d.rect().topLeft()).y())
    if need <= column:  # stacked: it shares the lowest dock's place, rather than the sliver napari gave it
        def share():  # once the window has laid the dock out at its height
            try:
                half = (below.height() + dock.height()) // 2
                window.resizeDocks([below, dock], [half, half], Qt.Orientation.Vertical)
            except RuntimeError:  # closed meanwhile
                pass

        QTimer.singleShot(0, share)
        return
    window.tabifyDockWidget(below, dock)
    dock.raise_()


def _dock_of(widget: QWidget):
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


__all__ = ["build_dock", "build_scrolling", "wrap", "keep_narrow", "elided_text", "elide_pair", "dock_beside",
           "place_in_column",
           "caption_out_of_the_toasts", "on_screen"]
