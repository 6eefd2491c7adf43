"""The files of a training job (``engine.job``) as the applications write them: safe unique names, images and
labels as TIFF."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import JobFolderError
from .images import check_labels


class FileNames:
    """File stems for layer names: safe on every system, unique within a job, the frame's index for a stack."""

    def __init__(self):
        self._used: set[str] = set()

    def stem(self, name: str, frame: int | None = None) -> str:
        base = re.sub(r"[^\w.-]+", "_", str(name)).strip("._") or "image"
        base = base[:80]  # a layer named after a long path: keep the names readable
        if frame is not None:
            base += f"_t{frame:04d}"
        stem, k = base, 2
        while stem.lower() in self._used:  # case-insensitive file systems (macOS, Windows)
            stem, k = f"{base}_{k}", k + 1
        self._used.add(stem.lower())
        return stem


def write_tiff(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """One array as a TIFF, its folder made; a JobFolderError naming the file if it cannot be written."""
    import tifffile  # lazy: seconds to import; the dock imports this module

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, np.ascontiguousarray(array), compression="zlib" if compress else None)
    except OSError as e:
        raise JobFolderError(f"Cannot write {path}: {e.strerror or e}.") from e
    return path


def image_file_array(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) frame as the file holds it: channels last, a single channel as a plain 2D image."""
    frame = np.asarray(frame)
    return frame[..., 0] if frame.ndim == 3 and frame.shape[-1] == 1 else frame


def labels_file_array(labels: np.ndarray, name: str) -> np.ndarray:
    """Labels in the smallest unsigned type that holds them (napari paints int32, TIFF readers like uint16)."""
    labels = check_labels(labels, name)
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint8 if top < 256 else np.uint16 if top < 2**16 else np.uint32)
