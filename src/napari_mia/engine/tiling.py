"""How a frame is cut into overlapping tiles that fit a memory budget, and how their edges are blended.

Untiled, every pixel is computed once; 512-pixel tiles overlapping by 128 compute each pixel ~2.3 times. The
predictor therefore asks for as few tiles as fit (``plan_tiles``), from a budget (``memory_budget``) and what
the network's activations take per pixel (``activation_bytes_per_pixel``).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

import numpy as np

STRIDE = 32  # every smp encoder halves the size five times


def ceil_to(n: int, k: int) -> int:
    return -(-n // k) * k


# tile="auto" predicts the whole image in one pass whenever the network's activations for it fit a memory
# budget, and otherwise cuts it into as few tiles as fit, overlapping only
# between tiles (the context a network lacks at a tile's inner edge; an image's own border is padded as
# untiled). The budget is compared with an upper bound on the activations (every layer's output at once:
# inference frees most of them as it goes, ~4 times fewer with Unet/resnet18 on CPU), so it errs on the
# small side.
CPU_BUDGET = 4 * 2**30  # at most, of that upper bound, with a quarter of the available memory below it
MAX_TILE_PIXELS = 4096 * 4096  # beyond this, one pass gains nothing and some GPU kernels index past 2**31


@dataclass(frozen=True)
class TilePlan:
    """How a (H, W) network-scale frame is cut: tiles of (height, width) starting at ys x xs, `batch` per pass."""

    height: int
    width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    batch: int = 1

    @property
    def tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    def __str__(self) -> str:
        return f"{self.tiles} tile(s) of {self.height}x{self.width}, {self.batch} per pass"


def _spread(length: int, tile: int, n: int) -> tuple[int, ...]:
    """n starts of `tile`-long tiles spread evenly over `length` (the first at 0, the last at the end)."""
    if n <= 1 or length <= tile:
        return (0,)
    return tuple(round(i * (length - tile) / (n - 1)) for i in range(n))


def plan_tiles(shape: tuple[int, int], max_pixels: int, overlap: int, batch_size: int = 1) -> TilePlan:
    """The fewest tiles (multiples of STRIDE, at most `max_pixels` each) covering a (H, W) frame, neighbours
    overlapping by at least `overlap`; among as many tiles, the least area computed. The whole frame is one
    tile (padded up to the stride, as untiled) when it fits. Tiles never go below 2 x overlap (and STRIDE x 2)
    a side, whatever the budget: smaller ones would be mostly overlap."""
    h, w = int(shape[0]), int(shape[1])
    ph, pw = ceil_to(h, STRIDE), ceil_to(w, STRIDE)
    max_pixels = int(min(max_pixels, MAX_TILE_PIXELS))
    smallest = max(ceil_to(2 * overlap, STRIDE), 2 * STRIDE)
    if ph * pw <= max_pixels:
        return TilePlan(ph, pw, (0,), (0,), 1)
    best = None
    for ny in range(1, max(1, -(-h // max(smallest - overlap, 1))) + 2):
        th = ph if ny == 1 else ceil_to(-(-(h + (ny - 1) * overlap) // ny), STRIDE)
        tw_max = min(pw, max_pixels // th // STRIDE * STRIDE)
        if th < smallest and ny > 1:
            break
        if tw_max < min(smallest, pw):
            continue
        nx = 1 if tw_max >= pw else -(-(w - overlap) // (tw_max - overlap))
        tw = pw if nx == 1 else ceil_to(-(-(w + (nx - 1) * overlap) // nx), STRIDE)
        key = (ny * nx, ny * nx * th * tw)
        if best is None or key < best[0]:
            best = (key, th, tw, ny, nx)
    if best is None:  # the budget is below the smallest useful tile: the smallest, all the same
        th, tw = min(smallest, ph), min(smallest, pw)
        ny = 1 if th >= h else -(-(h - overlap) // (th - overlap))
        nx = 1 if tw >= w else -(-(w - overlap) // (tw - overlap))
    else:
        _, th, tw, ny, nx = best
    batch = max(1, min(int(batch_size), max_pixels // (th * tw)))
    return TilePlan(th, tw, _spread(max(h, th), th, ny), _spread(max(w, tw), tw, nx), batch)


def memory_budget(device) -> int:
    """Bytes the network's activations may take in one pass when tiles are chosen automatically.

    CUDA: half of what the GPU has free, counting what PyTorch's caching allocator holds unused as free (it
    is, to this process: after a first image the cache keeps its activations, and the next image must not get
    smaller tiles for it). CPU (and MPS, which shares the system's memory): a quarter of the available
    memory, at most CPU_BUDGET.
    """
    import torch  # lazy: planning tiles of a shape needs no torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + max(cached, 0)) * 0.5)
    return int(min(_available_memory() * 0.25, CPU_BUDGET))


def _available_memory() -> int:
    try:
        # psutil comes with napari, not with the engine: imported where it may be missing.
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil; sysconf: free pages, Unix only
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return 4 * CPU_BUDGET


# model -> {channels: bytes per pixel}; weak, so that a model let go is not kept (nor its id mistaken).
_BYTES_PER_PIXEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def activation_bytes_per_pixel(model, channels: int, device) -> float:
    """Every layer's output of one forward pass added up, per input pixel: an upper bound on what a pass holds.

    Measured once per model and channel count on a 64x64 input (activations grow with the area)."""
    import torch  # lazy: planning tiles of a shape needs no torch

    known = _BYTES_PER_PIXEL.setdefault(model, {})
    if channels not in known:
        sizes = []

        def count(_module, _inputs, out):
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    sizes.append(t.numel() * t.element_size())

        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        was_training = model.training
        try:
            model.eval()
            with torch.inference_mode():
                model(torch.zeros(1, channels, 64, 64, device=device))
        finally:
            for hk in hooks:
                hk.remove()
            model.train(was_training)
        # A model whose layers cannot be seen (scripted) counts as Unet/resnet18 (1714 bytes a pixel).
        known[channels] = sum(sizes) / 64**2 or 2048.0
    return known[channels]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    r = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            r[:overlap] = np.minimum(r[:overlap], ramp)
        if not at_end:
            r[-overlap:] = np.minimum(r[-overlap:], ramp[::-1])
    return r
