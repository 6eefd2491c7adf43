"""Hand a job to a server (issue #18): Export training job from the dock, napari-mia train --job, Import model."""

import csv

import numpy as np

from napari_mia.cli import main
from tests.conftest import load_dsb
from tests.widgets.conftest import open_dock, snapshot, unchanged, wait_free


def test_job_round_trip_dock_cli_dock(make_napari_viewer, qtbot, tmp_path, capsys):
    """Three DSB fields in the dock (one marked for validation, one with a reviewed region), exported, trained by
    the command line in this process, and imported back: the settings reach the dock, the record the plot."""
    viewer = make_napari_viewer()
    pairs = load_dsb(3)
    for image, labels, name in pairs:
        viewer.add_image(image, name=name)
        viewer.add_labels(labels.astype(np.uint16), name=f"{name} labels")
    viewer.add_shapes([np.array([[0, 0], [0, 128], [128, 128], [128, 0]])], shape_type="rectangle",
                      name="checked")
    w = open_dock(viewer, "menu")
    c = w.controls
    c["label_mode"].value = "instances"
    c["epochs"].value = 1
    c["steps_per_epoch"].value = 2
    c["patch_width"].value = c["patch_height"].value = 64
    c["batch_size"].value = 2
    c["optimizer"].value = "adamax"  # not the default: it must come back with the model
    for k, (_, _, name) in enumerate(pairs):
        w.add_pair(name, f"{name} labels", regions="checked" if k == 1 else None)
    w.mark_validation([w.pairs[2]])
    snap = snapshot(viewer)

    job = tmp_path / "nuclei job"
    assert w.export_job(job)
    assert unchanged(viewer, snap)  # the layers are copied, never touched
    assert str(job) in w.status.value and "napari-mia train --job 'nuclei job' --out model.pt" in w.status.value
    assert len(list((job / "train" / "images").iterdir())) == 2
    assert len(list((job / "train" / "regions").iterdir())) == 1
    assert [p.name for p in (job / "validation" / "masks").iterdir()] == [f"{pairs[2][2]}.tif"]
    readme = (job / "README.md").read_text()
    assert "torchrun --nproc-per-node 4 -m napari_mia.cli train --job" in readme
    # a folder that holds something is refused plainly, and nothing in it is overwritten
    assert not w.export_job(job) and "not empty" in w.status.value

    # The server runs the command line in a process of its own; here it shares napari's, where OpenGL may have
    # loaded LLVM: triton is kept out first, as the dock does before torch.
    from napari_mia._llvm import keep_triton_out_if_llvm_loaded

    keep_triton_out_if_llvm_loaded()
    model = tmp_path / "server" / "model.pt"
    model.parent.mkdir()
    assert main(["train", "--job", str(job), "--out", str(model), "--quiet", "--device", "cpu"]) == 0
    assert "(1 for validation)" in capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "server" / "model_record.csv").open()))

    c["optimizer"].value = "sgd"
    c["label_mode"].value = "classes"
    assert w.import_model(model)
    wait_free(qtbot, w.session)
    assert c["optimizer"].value == "adamax" and c["label_mode"].value == "instances"
    assert w.session.has_model and "model_record.csv" in w.status.value
    record = w.session.record
    assert len(record.iterations) == sum(r["kind"] == "iteration" for r in rows) == 2
    assert len(record.epochs) == sum(r["kind"] == "epoch" for r in rows) == 1
    assert record.epochs[0].val_metric is not None  # the validation image was scored on the server
    plot = w.session.plot_widget
    plot.redraw()
    drawn = plot.lines["loss"].get_data()
    assert list(drawn[0]) == [1, 2] and np.allclose(drawn[1], [float(r["loss"]) for r in rows[:2]])
    assert "Imported: 1 epoch, 2 iterations" in plot.info.value


def test_export_job_without_training_data_says_so(make_napari_viewer, tmp_path, warnings_shown):
    viewer = make_napari_viewer()
    w = open_dock(viewer, "menu")
    assert not w.export_job(tmp_path / "job")
    assert not (tmp_path / "job").exists()
    assert warnings_shown and "Add at least one image" in w.status.value
