import numpy as np
import pytest

from benchmarks.peak_memory import PeakMemory
from tests.conftest import SHARED


def test_large_slide_predicts_tiled_in_bounded_memory_and_matches_untiled(trained):
    """The top 1664 rows (1664x2220, 28 tiles) of the 2967x2220 H&E region of ../shared, inverted to
    grey so that its nuclei look like the fluorescence the shared model learned. The whole slide, in
    colour, is measured by benchmarks/large_image.py; half of it keeps the suite's time down."""
    slide_path = SHARED / "large_images" / "cmu_small_region_he_noGT.png"
    if not slide_path.is_file():
        pytest.skip("../shared/data/large_images is not available")
    from napari_mia.engine.images import read_image
    from napari_mia.engine.predictor import Predictor

    t, _ = trained
    slide = (255 - read_image(slide_path)[:1664, :, :3].mean(-1)).astype(np.uint8)[..., None]
    tiled = t.predictor(tile=512, overlap=128)
    tiled.probabilities(slide[:512, :512])  # warm-up: one tile's worth of buffers
    with PeakMemory() as mem:
        probs = tiled.probabilities(slide)
        labels = tiled.decode(probs)
    assert labels.shape == (1664, 2220)
    # The whole-image buffers (normalised image, probabilities, blending weights) are ~25 bytes a
    # pixel, ~90 MB here; one untiled forward pass would need ~6 GB of activations.
    assert mem.added_mb < 1000, mem.added_mb
    y0, x0, size, margin = 800, 1300, 768, 128
    whole = Predictor(t.model, t.settings, t.device, tile=None).probabilities(slide[y0:y0 + size, x0:x0 + size])
    inner = (slice(margin, size - margin), slice(margin, size - margin))
    part = probs[:, y0:y0 + size, x0:x0 + size]
    fg = whole.argmax(0)[inner] > 0
    assert 0.02 < fg.mean() < 0.98  # the model finds nuclei there, not one class everywhere
    assert (part.argmax(0) == whole.argmax(0))[inner].mean() > 0.98
    assert np.abs(part - whole)[(slice(None), *inner)].mean() < 0.02
