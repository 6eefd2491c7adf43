"""Rounds: each training run's record and weights, kept compactly in the model file, restorable, and told."""

import numpy as np
import pytest
import torch

from napari_mia.engine import modelfile
from napari_mia.engine.methods import methods_paragraph, reproducibility
from napari_mia.engine.rounds import Round, RoundBook, pack, unpack
from napari_mia.engine.settings import Settings
from napari_mia.engine.trained_model import build_model

HEADLINE = (("fg_iou", "fg IoU"), ("object_f1", "object F1"))


def _network_state(seed: int) -> dict:
    torch.manual_seed(seed)
    s = Settings()
    return {k: v.clone() for k, v in build_model(s.model, load_pretrained=False).state_dict().items()}


def _moved(state: dict, step: float, seed: int) -> dict:
    """`state` after some training-like change: every float weight moved by about `step` of its size."""
    g = torch.Generator().manual_seed(seed)
    return {k: (v + step * v.abs().mean() * torch.randn(v.shape, generator=g) if torch.is_floating_point(v) else v + 3)
            for k, v in state.items()}


def test_pack_keeps_each_weight_within_its_channels_quantisation_step():
    anchor = _network_state(0)
    state = _moved(anchor, 0.05, 1)
    back = unpack(pack(state, anchor), anchor)
    assert back.keys() == state.keys()
    for k, v in state.items():
        if not torch.is_floating_point(v):
            assert torch.equal(back[k], v)  # counts kept exactly
            continue
        d = (v - anchor[k]).reshape(v.shape[0], -1) if v.ndim else (v - anchor[k]).reshape(1, -1)
        step = d.abs().amax(1, keepdim=True) / 127
        err = (back[k] - v).reshape(d.shape).abs()
        assert bool((err <= step / 2 + 1e-6).all()), k
    # Nothing changed: restored exactly.
    same = unpack(pack(anchor, anchor), anchor)
    assert all(torch.equal(same[k], anchor[k]) for k in anchor)


def test_book_restores_every_round_saves_and_loads_compactly(tmp_path):
    s = Settings()
    r1 = _network_state(0)
    r2 = _moved(r1, 0.05, 1)
    r3 = _moved(r2, 0.05, 2)
    book = RoundBook()
    for n, w in enumerate((r1, r2, r3), 1):
        book.add(Round(number=n, test={"images": 3, "object_f1": 0.5 + n / 10}), w)
    assert [r.number for r in book.rounds] == [1, 2, 3] and book.next_number == 4
    assert all(torch.equal(book.weights(2)[k], r3[k]) for k in r3)  # the latest round: exactly
    for i, w in enumerate((r1, r2)):
        close = book.weights(i)
        assert max(float((close[k] - w[k]).abs().max()) for k in w if torch.is_floating_point(w[k])) < 0.05

    # In a model file beside the latest round's weights; loaded back, the same rounds and weights.
    from napari_mia.engine import checkpoint

    path = checkpoint.write(tmp_path / "m.pt", r3, s, [], rounds=book)
    content = modelfile.load(path)
    loaded = RoundBook.from_file(content, content["state_dict"])
    assert [r.to_dict() for r in loaded.rounds] == [r.to_dict() for r in book.rounds]
    for i in range(3):
        a, b = book.weights(i), loaded.weights(i)
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Two earlier rounds add at most half of what a copy of the weights each would (float32: 4 bytes a weight).
    full = sum(v.numel() * v.element_size() for v in r3.values())
    assert loaded.size_bytes() < 0.5 * 2 * full
    assert path.stat().st_size < full + 0.5 * 2 * full + 1e6
    assert "Unet" in content["methods"] and content["reproducibility"]["rounds"][2]["round"] == 3

    # Written against other weights (e.g. after restoring round 1): every round still comes back.
    path2 = checkpoint.write(tmp_path / "m2.pt", r1, s, [], rounds=book)
    c2 = modelfile.load(path2)
    again = RoundBook.from_file(c2, c2["state_dict"])
    w3 = again.weights(2)
    assert max(float((w3[k] - r3[k]).abs().max()) for k in r3 if torch.is_floating_point(r3[k])) < 0.05


def test_a_file_from_before_rounds_has_none_and_an_unknown_round_is_left_out():
    assert RoundBook.from_file({"state_dict": {}}, {}).rounds == []
    book = RoundBook.from_file({"rounds": [{"number": 1, "future_key": 3}, {"no_number": True}]}, {})
    assert [r.number for r in book.rounds] == [1] and not book.has_weights(0)


def test_a_worse_round_on_the_same_test_images_is_said_in_plain_words():
    w = _network_state(0)
    book = RoundBook()
    same = ["sha256:a", "sha256:b"]
    book.add(Round(number=1, test={"object_f1": 0.70}, test_data=same), w)
    assert book.regression("object_f1", "object F1") is None
    book.add(Round(number=2, test={"object_f1": 0.80}, test_data=same), w)
    assert book.regression("object_f1", "object F1") is None
    book.add(Round(number=3, test={"object_f1": 0.60}, test_data=same), w)
    said = book.regression("object_f1", "object F1")
    assert "Round 3" in said and "round 2" in said and "0.600" in said and "Restore round 2" in said
    # Scored on other test images: not comparable, nothing said.
    book.add(Round(number=4, test={"object_f1": 0.10}, test_data=["sha256:c"]), w)
    assert book.regression("object_f1", "object F1") is None


def test_methods_paragraph_tells_network_data_rounds_and_test_scores():
    s = Settings()
    s.model.label_mode, s.model.encoder, s.train.minutes = "instances", "resnet34", 5
    rounds = [Round(number=1, images=2, validation_images=1, objects=40, seconds=300, device="cpu",
                    human_minutes=4.0, versions={"napari-mia": "1.2", "torch": "2.14.1"}),
              Round(number=2, images=3, validation_images=1, objects=61, seconds=300, device="cpu", corrected=1,
                    human_minutes=2.5, test={"images": 3, "fg_iou": 0.81, "object_f1": 0.74},
                    versions={"napari-mia": "1.2", "torch": "2.14.1"}, data={"a.tif": "sha256:1"})]
    text = methods_paragraph(s, rounds, HEADLINE)
    for part in ("Instance segmentation", "Unet", "resnet34", "trained from random initialisation",
                 "napari-mia 1.2 on PyTorch 2.14.1", "2 rounds", "4 images with 61 labelled objects",
                 "1 of them corrected", "10.0 minutes", "6.5 minutes of active annotation",
                 "a time budget of 5 minutes per round",
                 "3 test images", "fg IoU of 0.810", "object F1 of 0.740"):
        assert part in text, part
    assert methods_paragraph(s, [], HEADLINE) == ""
    rec = reproducibility(rounds)
    assert rec["rounds"][1]["data"] == {"a.tif": "sha256:1"} and rec["rounds"][0]["versions"]["torch"] == "2.14.1"
    assert np.isfinite(rounds[1].test["fg_iou"])


def test_restore_round_gives_that_rounds_weights_and_predictions_back(trained, dsb_pairs, tmp_path):
    from napari_mia.engine.trainer import Trainer

    trained[0].save(tmp_path / "m.pt")
    t = Trainer.load(tmp_path / "m.pt")
    image = dsb_pairs[9][0]
    before = t.predictor().predict(image)
    first = {k: v.detach().cpu().clone() for k, v in t.model.state_dict().items()}
    t.rounds.add(Round(number=1), first)
    torch.manual_seed(0)
    with torch.no_grad():  # a second round that learned something else
        for p in t.model.parameters():
            p.add_(0.3 * p.abs().mean() * torch.randn_like(p))
    t.rounds.add(Round(number=2), {k: v.detach().cpu() for k, v in t.model.state_dict().items()})
    assert ((t.predictor().predict(image) > 0) == (before > 0)).mean() < 0.99  # round 2 predicts otherwise
    t.restore_round(1)
    now = t.model.state_dict()
    moved = max(float((now[k].cpu().float() - first[k].float()).abs().max()) for k in first)
    assert moved < 0.01, moved
    after = t.predictor().predict(image)
    assert ((after > 0) == (before > 0)).mean() > 0.999  # round 1's predictions again
    with pytest.raises(Exception, match="There is no round 7"):
        t.restore_round(7)
