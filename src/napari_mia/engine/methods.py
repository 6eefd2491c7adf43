"""A methods paragraph and a reproducibility record, written from a model's rounds.

The paragraph is what a user pastes into a paper's methods; the record is what someone needs to train the
same model again: package versions, seeds, every setting, and a hash of every image and target per round.
Both are kept in the model file, shown by ``napari-mia info`` and written into bioimage.io packages.
"""

from __future__ import annotations

import platform
from importlib import metadata

from .rounds import Round
from .settings import Settings

PACKAGES = ("napari-mia", "torch", "segmentation-models-pytorch", "albumentations", "numpy", "napari")


def package_versions() -> dict[str, str]:
    """The versions of what trains a model here (a package not installed is left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _augmentations(s: Settings) -> str:
    a = s.augment
    told = [f"{words} (p={p:g})" for words, p in (
        ("horizontal flips", a.hflip), ("vertical flips", a.vflip), ("zoom", a.zoom),
        ("brightness/contrast changes", a.brightness_contrast), ("gamma changes", a.gamma), ("noise", a.noise),
        ("blur", a.blur), ("affine transforms", a.affine), ("elastic (piecewise affine) deformation",
                                                              a.piecewise_affine), ("dropout", a.dropout)) if p]
    return ", ".join(told) if told else "no augmentation"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} seconds"


def methods_paragraph(settings: Settings, rounds: list[Round], headline: tuple[tuple[str, str], ...] = ()) -> str:
    """A paragraph for a paper's methods: the network, the data, the rounds, the training and the test
    scores. Empty when there is no round to tell (a model trained before rounds were kept)."""
    if not rounds:
        return ""
    s, last = settings, rounds[-1]
    m = s.model
    v = last.versions
    task = {"segmentation": f"{'Instance' if m.label_mode == 'instances' else 'Semantic'} segmentation",
            "detection": "Object detection (points)", "classification": "Image classification"}.get(m.task, m.task)
    encoder = "initialised with ImageNet weights" if m.pretrained else "trained from random initialisation"
    lib = f"napari-mia {v.get('napari-mia', '')}".strip() + (f" on PyTorch {v['torch']}" if "torch" in v else "")
    images = last.images + last.validation_images
    objects = f" with {last.objects} labelled objects" if last.objects else ""
    corrected = sum(r.corrected for r in rounds)
    human = [r.human_minutes for r in rounds if r.human_minutes is not None]
    seconds = sum(r.seconds for r in rounds)
    devices = sorted({r.device for r in rounds if r.device})
    text = [f"{task} used a {m.architecture} network with a {m.encoder} encoder {encoder} "
            f"(segmentation-models-pytorch), trained with {lib} over {len(rounds)} round{'s' if len(rounds) != 1 else ''} of annotation and training."]
    data = f"The final round trained on {images} image{'s' if images != 1 else ''}{objects}"
    if corrected:
        data += f", {corrected} of them corrected predictions of an earlier round"
    data += f" ({last.validation_images} held out for validation)."
    text.append(data)
    effort = f"Training took {_minutes(seconds)} in all on {', '.join(devices) or 'an unrecorded device'}"
    if human:
        effort += f", and editing the labels {sum(human):.1f} minutes of active annotation time"
    text.append(effort + ".")
    schedule = {"cosine": "a cosine schedule", "constant": "a constant rate", "plateau": "reduction on plateau",
                "step": "step decay"}.get(s.train.lr_schedule, s.train.lr_schedule)
    budget = f" with a time budget of {s.train.minutes:g} minutes per round" if s.train.minutes else ""
    text.append(f"Each round trained on {s.data.patch_width}x{s.data.patch_height}-pixel patches in batches of "
                f"{s.train.batch_size}{budget}, with the {s.train.optimizer.capitalize()} optimizer (learning rate "
                f"{s.train.learning_rate:g}, {schedule}), the {s.train.loss} loss and {_augmentations(s)}; the "
                f"weights of the epoch with the best validation score were kept.")
    scored = [(k, words) for k, words in headline if k in last.test]
    if scored:
        n = last.test.get("images", 0)
        told = " and ".join(f"a mean {words} of {last.test[k]:.3f}" for k, words in scored)
        text.append(f"On {n} test image{'s' if n != 1 else ''} never used in training, the final model reached "
                    f"{told} (means over images).")
    return " ".join(text)


def reproducibility(rounds: list[Round]) -> dict:
    """Per round: package versions, seed, every setting, and the hash of every image and target used."""
    return {"rounds": [{"round": r.number, "finished": r.finished, "versions": r.versions,
                        "seed": r.seed, "device": r.device, "settings": r.settings, "data": r.data,
                        "test_data": r.test_data, "started_from": r.started_from} for r in rounds]}
