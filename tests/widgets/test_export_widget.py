"""The dock's Export (bioimage.io) button: wiring only (the export itself is tested in tests/engine/test_export.py)."""

import numpy as np


def _give_model(widget):
    from napari_mia.widgets._session import import_engine_libraries

    import_engine_libraries()  # triton kept out first where Mesa's LLVM is loaded (napari_mia._llvm)
    from napari_mia.engine.trained_model import build_model
    from napari_mia.engine.trainer import Trainer

    t = Trainer(widget.read_settings())
    t.model = build_model(t.settings.model)
    widget.session.trainer = t
    widget._update_buttons()


def test_export_button_exports_the_chosen_image(widget, nuclei_viewer, monkeypatch, tmp_path, warnings_shown):
    from napari_mia.engine import export as E
    from napari_mia.widgets.export import export_model

    assert not widget.export_button.enabled  # no model yet
    assert not export_model(widget, tmp_path / "m.zip", blocking=True)
    assert "no model to export" in warnings_shown[-1]
    _give_model(widget)
    assert widget.export_button.enabled
    calls = []
    monkeypatch.setattr(E, "export_package", lambda trainer, path, image, **kw: calls.append((trainer, image, kw))
                        or path)
    widget.predict_combo.value = "nuclei"
    assert export_model(widget, tmp_path / "m.zip", blocking=True, formats=["onnx"])
    trainer, image, kw = calls[0]
    np.testing.assert_array_equal(image, nuclei_viewer.layers["nuclei"].data)
    assert kw == {"rgb": False, "formats": ["onnx"]}
    assert trainer.model is not widget.session.trainer.model  # a snapshot: training may go on meanwhile
    assert "Exported and tested: m.zip" in widget.status.value
    # A failed export is a plain-words warning.
    monkeypatch.setattr(E, "export_package", lambda *a, **k: (_ for _ in ()).throw(E.ExportError("test failed")))
    assert not export_model(widget, tmp_path / "m.zip", blocking=True)
    assert warnings_shown[-1].endswith("test failed")
