"""How closely a restored round predicts as it did: rounds restored from a later model file against the files
saved at those rounds, predicting labelled images.

    PYTHONPATH=src .venv/bin/python benchmarks/rounds_restore.py LATER.pt IMAGES MASKS N=ROUND_N.pt [N=...]

e.g. ``r5.pt test/images test/masks 1=r.pt 2=r2.pt 4=r4.pt`` (docs/benchmarks.md, "Rounds in the model file").
Prints, per round: the largest weight difference, the share of pixels whose foreground agrees (mean and lowest
image) and the object F1 difference against the truth (mean and largest).
"""

import argparse
from pathlib import Path

import numpy as np
import tifffile

from napari_mia.engine.evaluate import segmentation_scores
from napari_mia.engine.trained_model import TrainedModel
from napari_mia.engine.trainer import Trainer
from napari_mia.workflows.prediction import predictor_for_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("later", type=Path)
    p.add_argument("images", type=Path)
    p.add_argument("masks", type=Path)
    p.add_argument("rounds", nargs="+", help="N=FILE: round N and the file saved at that round")
    a = p.parse_args()
    t = Trainer.load(a.later)
    for pair in a.rounds:
        n, own = pair.split("=", 1)
        t.restore_round(int(n))
        restored, saved = predictor_for_model(t.trained_model()), TrainedModel.load(own)
        other = predictor_for_model(saved)
        agree, diff = [], []
        for f in sorted(a.images.iterdir()):
            image, truth = tifffile.imread(f), tifffile.imread(a.masks / f.name)
            pa, pb = restored.predict(image), other.predict(image)
            agree.append(((pa > 0) == (pb > 0)).mean())
            diff.append(segmentation_scores(pa, truth)["object_f1"] - segmentation_scores(pb, truth)["object_f1"])
        wa, wb = t.model.state_dict(), saved.network.state_dict()
        err = max(float((wa[k].float().cpu() - wb[k].float().cpu()).abs().max()) for k in wb)
        print(f"round {n} from {a.later.name} vs {Path(own).name}: largest weight difference {err:.1e}; foreground "
              f"agreement mean {np.mean(agree):.5f}, lowest {np.min(agree):.5f}; object F1 difference mean "
              f"{np.mean(diff):+.4f}, largest {np.max(np.abs(diff)):.4f}")


if __name__ == "__main__":
    main()
