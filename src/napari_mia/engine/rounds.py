"""Rounds: every training run of a model, what it was trained on and how it scored, and its weights.

MIA's loop is label, train, predict, correct, retrain. A round is one training run in that loop. The
book keeps, per round, what was labelled (images, objects, corrected predictions added, the human
minutes spent editing), the training time and device, the validation and test scores, a hash of every
image and target it trained on, and the weights of its best epoch, so that any earlier round can be
restored when a later one made things worse.

The weights are kept compactly: the latest round's are the model's own (nothing more to store); an
earlier round's are kept as its difference to the next round's, quantised to 8 bits per weight (a scale
per output channel) and zlib-compressed. A restored round is therefore within 1/254 of each channel's
largest change per round of the weights it had; its predictions agree with the round's own to within
what that moves.
"""

from __future__ import annotations

import hashlib
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The file keys (``modelfile``): older code paths ignore keys they do not know, so a file with rounds
# still loads there (without them).
ROUNDS_KEY = "rounds"
ROUND_WEIGHTS_KEY = "round_weights"
ANCHOR_KEY = "round_anchor"
SAMPLE = 1 << 18  # bytes of a packed round tried for compression first  # the latest round's weights against the file's, where they differ


def hash_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def hash_array(a) -> str:
    """A short hash of an array's values and shape (an image, a label image, points): the same data, the
    same hash, wherever it came from (a file or a layer)."""
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(repr((a.shape, str(a.dtype))).encode())
    h.update(a.tobytes())
    return "sha256:" + h.hexdigest()[:16]


@dataclass
class Round:
    """One training run: what it learned from, how long, where, and how it scored."""

    number: int
    finished: str = ""  # local time, ISO 8601
    seconds: float = 0.0
    steps: int = 0
    device: str = ""
    images: int = 0
    validation_images: int = 0
    objects: int | None = None  # labelled objects (segmentation, detection); None where not counted
    corrected: int = 0  # predictions corrected and added to the training set since the last round
    human_minutes: float | None = None  # active editing time of the training set since the last round
    validation: float | None = None  # the best epoch's validation score (object F1 where there is one)
    test: dict = field(default_factory=dict)  # mean test scores over images, and "images"
    test_data: list[str] = field(default_factory=list)  # the test images' hashes: rounds compare on the same set
    data: dict = field(default_factory=dict)  # name -> hash of image + target, every training image
    seed: int = 0
    settings: dict = field(default_factory=dict)
    started_from: str = ""  # e.g. "nuclei.pt", "resumed", "" (the model's own weights, or new ones)
    versions: dict = field(default_factory=dict)  # python and the packages that trained it (engine.methods)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Round:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


# -- compact weights --------------------------------------------------------------------------------
def pack(state: dict, anchor: dict) -> dict:
    """`state` as its difference to `anchor`, 8 bits a weight with a scale per output channel, compressed.
    Integer entries (BatchNorm's step count) are kept as they are."""
    import torch  # lazy: the dock imports this module as it opens

    scales, shapes, chunks, exact = {}, {}, [], {}
    for k, v in state.items():
        if not torch.is_floating_point(v):
            exact[k] = v.detach().cpu().clone()
            continue
        d = (v.detach().cpu().float() - anchor[k].detach().cpu().float())
        rows = d.reshape(d.shape[0], -1) if d.ndim >= 1 and d.numel() else d.reshape(1, -1)
        scale = rows.abs().amax(1) / 127.0
        q = torch.round(rows / torch.where(scale > 0, scale, torch.ones_like(scale))[:, None]).to(torch.int8)
        scales[k], shapes[k] = scale, list(v.shape)
        chunks.append(q.numpy().tobytes())
    raw = b"".join(chunks)
    # A long round's changes fill the 8 bits and hardly compress (0.4 s for 10%, resnet18): a sample decides.
    squeeze = len(zlib.compress(raw[:SAMPLE], 1)) < 0.85 * len(raw[:SAMPLE])
    blob = zlib.compress(raw, 1) if squeeze else raw
    return {"scales": scales, "shapes": shapes, "exact": exact, "zlib": squeeze,
            "q": torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()}


def unpack(packed: dict, anchor: dict) -> dict:
    """The weights `pack` kept: `anchor` plus the dequantised difference."""
    import torch

    data = packed["q"].numpy().tobytes()
    raw = np.frombuffer(zlib.decompress(data) if packed.get("zlib", True) else data, dtype=np.int8)
    out, at = {}, 0
    for k, v in anchor.items():
        if k in packed["exact"]:
            out[k] = packed["exact"][k].clone()
            continue
        shape = packed["shapes"][k]
        n = math.prod(shape) if shape else 1
        q = torch.from_numpy(raw[at:at + n].astype(np.float32)).reshape(len(packed["scales"][k]), -1)
        at += n
        out[k] = (v.detach().cpu().float() + (q * packed["scales"][k][:, None]).reshape(shape)).to(v.dtype)
    return out


def packed_bytes(packed: dict) -> int:
    """About what a packed round adds to a file."""
    return int(packed["q"].numel() + sum(4 * s.numel() for s in packed["scales"].values()))


def _copy(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


class RoundBook:
    """The rounds of a model and their weights: the latest round's as they are (the anchor), every
    earlier one packed (``pack``) against the round after it, so that adding a round packs one set of
    weights only. Per round: None (the anchor itself), a packed difference, or False (no weights kept: a
    round whose file came without them). The quantisation errors add up along the chain: round k of n
    comes back within the sum of the n - k steps' errors."""

    def __init__(self):
        self.rounds: list[Round] = []
        self._anchor: dict | None = None
        self._packed: list[dict | bool | None] = []

    def __len__(self) -> int:
        return len(self.rounds)

    def clear(self) -> None:
        self.__init__()

    @property
    def next_number(self) -> int:
        return self.rounds[-1].number + 1 if self.rounds else 1

    def add(self, round_: Round, weights: dict, replace_last: bool = False) -> None:
        """A finished round with its best weights, which become the anchor; the previous anchor is packed
        against them. `replace_last`: it continues the latest round (a stopped run resumed), which it
        replaces."""
        if replace_last and self.rounds:
            before = self.weights(len(self.rounds) - 2) if len(self.rounds) > 1 and self.has_weights(
                len(self.rounds) - 2) else None
            self.rounds.pop()
            self._packed.pop()
            if self.rounds:
                self._anchor, self._packed[-1] = before, (None if before is not None else False)
            round_.number = self.next_number
        if self.rounds:
            self._packed[-1] = pack(self._anchor, weights) if self._packed[-1] is None and self._anchor else False
        self._anchor = _copy(weights)
        self.rounds.append(round_)
        self._packed.append(None)

    def has_weights(self, index: int) -> bool:
        """Whether round `index` (0-based) can be restored: its weights and every later round's are kept."""
        return self._anchor is not None and all(p is not False for p in self._packed[index:])

    def weights(self, index: int) -> dict:
        """The weights of round `index` (0-based in ``rounds``)."""
        if not self.has_weights(index):
            raise KeyError(f"round {self.rounds[index].number} has no weights kept")
        w = _copy(self._anchor)
        for p in reversed(self._packed[index:-1]):
            w = unpack(p, w)
        return w

    def index_of(self, number: int) -> int:
        for i, r in enumerate(self.rounds):
            if r.number == number:
                return i
        raise KeyError(number)

    # -- in a model file ----------------------------------------------------------------------------
    def file_entries(self, file_weights: dict) -> dict:
        """What the model file keeps: the rounds, and their weights: the chain, and the latest round's
        against the file's own where they differ (e.g. after restoring an earlier round)."""
        if not self.rounds:
            return {}
        chain = [{"same": True} if p is None else ({"none": True} if p is False else p) for p in self._packed]
        entries = {ROUNDS_KEY: [r.to_dict() for r in self.rounds], ROUND_WEIGHTS_KEY: chain}
        if self._anchor is not None and not _same(self._anchor, file_weights):
            entries[ANCHOR_KEY] = pack(self._anchor, file_weights)
        return entries

    @classmethod
    def from_file(cls, content: dict, file_weights: dict) -> RoundBook:
        """The rounds a model file's content holds, their weights against the file's (`file_weights`)."""
        book = cls()
        rounds = [d for d in content.get(ROUNDS_KEY) or [] if isinstance(d, dict)]
        stored = content.get(ROUND_WEIGHTS_KEY) or []
        if len(stored) != len(rounds):
            stored = [{"none": True}] * len(rounds)
        for d, p in zip(rounds, stored):
            try:
                book.rounds.append(Round.from_dict(d))
            except TypeError:
                continue  # a round this napari-mia cannot read: left out rather than refusing the model
            book._packed.append(None if p.get("same") else False if p.get("none") else p)
        if book.rounds and book._packed[-1] is None and file_weights:
            anchor = content.get(ANCHOR_KEY)
            book._anchor = _copy(file_weights) if anchor is None else unpack(anchor, file_weights)
        return book

    def size_bytes(self) -> int:
        """What the earlier rounds' weights add to the model file."""
        return sum(packed_bytes(p) for p in self._packed if isinstance(p, dict))

    # -- what a user reads --------------------------------------------------------------------------
    def regression(self, headline: str, label: str) -> str | None:
        """When the latest round scores worse on the test images than the best earlier round on the same
        images: what to say, in plain words."""
        if len(self.rounds) < 2:
            return None
        last = self.rounds[-1]
        score = last.test.get(headline)
        if score is None:
            return None
        earlier = [r for r in self.rounds[:-1] if r.test.get(headline) is not None and r.test_data == last.test_data]
        if not earlier:
            return None
        best = max(earlier, key=lambda r: r.test[headline])
        if score >= best.test[headline]:
            return None
        return (f"Round {last.number} scores worse on the test images than round {best.number} ({label} "
                f"{score:.3f} against {best.test[headline]:.3f}): the labels added since may be wrong, or too few "
                f"to help yet. Restore round {best.number} to go back to its model.")


def rounds_path(model_path) -> Path:
    """Where the command line lists the rounds of a model (CSV): beside it, <stem>_rounds.csv."""
    p = Path(model_path)
    return p.with_name(p.stem + "_rounds.csv")


def rounds_csv_rows(rounds: list[Round]) -> tuple[list[str], list[list[Any]]]:
    """The rounds as a table: one row per round, test scores as columns (``test_<score>``)."""
    test_keys = sorted({k for r in rounds for k in r.test if k != "images"})
    columns = ["round", "finished", "images", "validation_images", "objects", "corrected", "human_minutes",
               "seconds", "steps", "device", "validation", "test_images", *[f"test_{k}" for k in test_keys],
               "started_from"]

    def cell(v):
        return "" if v is None else round(v, 4) if isinstance(v, float) else v

    rows = [[r.number, r.finished, r.images, r.validation_images, cell(r.objects), r.corrected,
             cell(r.human_minutes), round(r.seconds, 1), r.steps, r.device, cell(r.validation),
             r.test.get("images", ""), *[cell(r.test.get(k)) for k in test_keys], r.started_from] for r in rounds]
    return columns, rows
