"""tile="auto" (issue #18): the whole image in one pass when it fits the memory budget, else the fewest tiles."""

import numpy as np
import pytest

from napari_mia.engine.tiling import STRIDE, plan_tiles


@pytest.mark.parametrize("shape, max_pixels", [((1024, 1344), 3_000_000), ((2967, 2220), 2_500_000),
                                               ((2967, 2220), 600_000), ((100, 5000), 50_000), ((700, 300), 1),
                                               ((513, 513), 512 * 512)])
def test_a_plan_covers_the_frame_with_overlapping_tiles_within_the_budget(shape, max_pixels):
    h, w = shape
    plan = plan_tiles(shape, max_pixels, overlap=128, batch_size=4)
    assert plan.height % STRIDE == 0 and plan.width % STRIDE == 0
    smallest = 256  # 2 x overlap: below that, a tile would be mostly overlap
    assert plan.height * plan.width <= max(max_pixels, smallest * smallest)
    assert plan.batch * plan.height * plan.width <= max(max_pixels, plan.height * plan.width)
    for starts, tile, length in ((plan.ys, plan.height, h), (plan.xs, plan.width, w)):
        assert starts[0] == 0 and starts[-1] + tile >= length
        if len(starts) > 1:  # neighbours share at least the overlap; the last tile ends at the frame's end
            assert starts[-1] + tile == length
            assert min(a + tile - b for a, b in zip(starts, starts[1:])) >= 128


def test_a_frame_that_fits_is_one_pass_and_a_larger_one_as_few_tiles_as_fit():
    assert plan_tiles((1024, 1344), 1024 * 1344, 128).tiles == 1
    assert plan_tiles((1000, 1300), 1024 * 1344, 128).tiles == 1  # padded up to the stride, as untiled
    # 512-pixel tiles 128 apart would take 4 x 3 = 12 passes; half the image per tile takes 2.
    two = plan_tiles((1024, 1344), 1024 * 1344 // 2 + 128 * 1024, 128)
    assert two.tiles == 2


def test_auto_tiles_give_the_whole_image_labels_and_a_small_budget_cuts_into_bounded_tiles(trained, dsb_pairs):
    from napari_mia.engine.evaluate import segmentation_scores
    from napari_mia.engine.predictor import Predictor
    from napari_mia.engine.tiling import activation_bytes_per_pixel

    t, _ = trained
    image = np.block([[dsb_pairs[8][0], dsb_pairs[9][0]], [dsb_pairs[10][0], dsb_pairs[11][0]]])  # 512 x 512
    whole = t.predictor(tile=None).predict(image)
    auto = t.predictor()  # the default; the budget here is far above a 512 x 512 pass
    assert auto.tile == "auto"
    assert np.array_equal(auto.predict(image), whole)
    assert auto.last_plan.tiles == 1

    per_pixel = activation_bytes_per_pixel(t.model, 1, t.device)
    budget = int(320 * 320 * per_pixel)
    small = Predictor(t.model, t.settings, t.device, memory=budget)
    seen = []
    labels = small.predict(image, progress=lambda done, total: seen.append(total))
    plan = small.last_plan
    assert plan.tiles == 4 and seen == [4] * 4  # 2 x 2 tiles of 320: (512 + 128) / 2
    assert plan.batch * plan.height * plan.width * per_pixel <= budget  # bounded: a pass holds one tile
    assert whole.max() > 20  # the model finds the nuclei
    scores = segmentation_scores(labels, whole)
    assert scores["object_f1"] > 0.97 and scores["fg_iou"] > 0.98, scores


def test_the_budget_is_a_share_of_free_memory_counting_the_gpu_cache_as_free(monkeypatch):
    import torch

    from napari_mia.engine.tiling import CPU_BUDGET, memory_budget

    assert 0 < memory_budget("cpu") <= CPU_BUDGET
    # No GPU here: the CUDA path with its calls stood in for (8 GiB free, 1.5 GiB cached by PyTorch, unused).
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * gib, 16 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: gib // 2)
    assert memory_budget("cuda:0") == int(9.5 * gib * 0.5)


def test_a_predictor_keeps_its_budget_so_every_frame_is_cut_alike(monkeypatch):
    from napari_mia.engine.trained_model import build_model
    from napari_mia.engine.predictor import Predictor
    from napari_mia.engine.settings import Settings

    budgets = iter([200 * 2**20, 10 * 2**30])  # free memory changing between two images
    monkeypatch.setattr("napari_mia.engine.predictor.memory_budget", lambda device: next(budgets))
    s = Settings().update(label_mode="instances")
    p = Predictor(build_model(s.model), s, "cpu")
    assert p.tiles_per_frame((600, 600)) == p.tiles_per_frame((600, 600)) > 1
