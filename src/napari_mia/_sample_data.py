"""Sample data: real fluorescence nuclei with human instance labels (CC0, DSB 2018)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).parent / "sample_data"


def load_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(frames, H, W) uint8 images and uint16 instance labels."""
    import tifffile  # lazy: slow to import, and napari-mia --help imports this module (through demo)

    return tifffile.imread(SAMPLE_DIR / "nuclei.tif"), tifffile.imread(SAMPLE_DIR / "nuclei_labels.tif")


def make_sample_data():
    """napari sample-data contribution: the image stack and its labels."""
    images, labels = load_sample_arrays()
    return [
        (images, {"name": "nuclei"}, "image"),
        (labels, {"name": "nuclei labels"}, "labels"),
    ]
