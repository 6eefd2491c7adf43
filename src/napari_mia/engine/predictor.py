"""Tiled prediction of images of any size, in bounded memory.

Each frame is normalised and down-scaled as a whole (as in training), cut
into overlapping tiles, and the tiles' probabilities are blended with weights
that fall off towards the inner tile edges, where a network sees least
context. Probabilities are scaled back to the frame's size before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
import weakref
from typing import Callable

import numpy as np

from . import accel, applications
from .errors import DataError, OutOfMemoryError, SettingsError
from .images import channels_last, image_frames, is_stack, normalize, rescale, resize_to
from .scale import SAME_SCALE
from .settings import STRIDE, Settings
from .targets import fill_holes as _fill_holes  # noqa: F401 - importable from here, as before

# How far an object diameter may rescale an image for the network: beyond this the estimate is
# almost surely wrong (noise taken for tiny objects), and memory would grow with the square.
MIN_SCALE, MAX_SCALE = 1 / 16, 4.0


@dataclass
class PostProcess:
    min_size: int = 0  # objects (or class regions) smaller than this are removed
    fill_holes: bool = False
    # Instance mode: cut touching objects apart along the predicted boundaries
    # (off: every connected blob of foreground is one object).
    split_touching: bool = True


def _ceil_to(n: int, k: int) -> int:
    return -(-n // k) * k


# -- tiling plans ---------------------------------------------------------------------------------
# Untiled, every pixel is computed once; 512-pixel tiles overlapping by 128 compute each pixel ~2.3 times
# (issue #18). tile="auto" therefore predicts the whole image in one pass whenever the network's
# activations for it fit a memory budget, and otherwise cuts it into as few tiles as fit, overlapping only
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
    ph, pw = _ceil_to(h, STRIDE), _ceil_to(w, STRIDE)
    max_pixels = int(min(max_pixels, MAX_TILE_PIXELS))
    smallest = max(_ceil_to(2 * overlap, STRIDE), 2 * STRIDE)
    if ph * pw <= max_pixels:
        return TilePlan(ph, pw, (0,), (0,), 1)
    best = None
    for ny in range(1, max(1, -(-h // max(smallest - overlap, 1))) + 2):
        th = ph if ny == 1 else _ceil_to(-(-(h + (ny - 1) * overlap) // ny), STRIDE)
        tw_max = min(pw, max_pixels // th // STRIDE * STRIDE)
        if th < smallest and ny > 1:
            break
        if tw_max < min(smallest, pw):
            continue
        nx = 1 if tw_max >= pw else -(-(w - overlap) // (tw_max - overlap))
        tw = pw if nx == 1 else _ceil_to(-(-(w + (nx - 1) * overlap) // nx), STRIDE)
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
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + max(cached, 0)) * 0.5)
    return int(min(_available_memory() * 0.25, CPU_BUDGET))


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil comes with napari, not with the engine; sysconf: free pages, Unix only
        import os

        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return 4 * CPU_BUDGET


# model -> {channels: bytes per pixel}; weak, so that a model let go is not kept (nor its id mistaken).
_BYTES_PER_PIXEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def activation_bytes_per_pixel(model, channels: int, device) -> float:
    """Every layer's output of one forward pass added up, per input pixel: an upper bound on what a pass holds.

    Measured once per model and channel count on a 64x64 input (activations grow with the area)."""
    import torch

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


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    r = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            r[:overlap] = np.minimum(r[:overlap], ramp)
        if not at_end:
            r[-overlap:] = np.minimum(r[-overlap:], ramp[::-1])
    return r


class _Progress:
    """(done, total) over a whole image or stack, told to `callback` after each tile."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int):
        self.callback, self.total, self.done = callback, max(int(total), 1), 0

    def step(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)


def _frames(image, channels: int, rgb, name: str) -> np.ndarray:
    """image_frames, and a refusal of NaN or infinite values that names the image."""
    frames = image_frames(image, channels, name, rgb=rgb)
    if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
        raise DataError(f"'{name}' contains NaN or infinite values, so it cannot be predicted. Replace them "
                        "(e.g. with 0) and predict it again.")
    return frames


def _same_frame(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are views of the same pixels (``frames[0]`` and the first frame of ``for f in frames``
    are distinct objects)."""
    return a is b or (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
                      and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


class Predictor:
    """Predictions of one model.

    `diameter`: the objects' typical diameter in the user's images, in their pixels (a number, or
    "auto" to estimate it per image with ``engine.scale.estimate_diameter``); each image is then
    rescaled so that its objects have the size the model was trained on, and results come back at
    the image's own size. None: the model's down scaling, as in training.
    `tta`: test-time augmentation, the mean over the 8 flips and 90-degree rotations of each tile
    (8 times the work).
    `tile`: "auto" (the whole image in one pass when the network's activations fit `memory` bytes, else as
    few tiles as fit, see ``plan_tiles``), a tile size (square tiles, `overlap` apart, as before), or None
    (always the whole image). `memory`: the budget of "auto" in bytes; None: ``memory_budget(device)`` when
    first needed, then kept, so that every image and frame this Predictor sees is cut the same way.
    """

    def __init__(self, model, settings: Settings, device, tile: int | str | None = "auto", overlap: int = 128,
                 batch_size: int | None = None, diameter: float | str | None = None, tta: bool = False,
                 memory: int | None = None):
        self.model, self.settings, self.device = model, settings, device
        if isinstance(tile, str) and tile != "auto":
            raise SettingsError(f"The tile size must be a number of pixels or 'auto', got '{tile}'.")
        self.tile = tile if tile is None or tile == "auto" else max(_ceil_to(int(tile), STRIDE), STRIDE)
        self.overlap = overlap if not isinstance(self.tile, int) else min(overlap, self.tile // 2)
        self.memory = memory
        self.batch_size = batch_size or max(1, settings.train.batch_size)
        self.last_plan: TilePlan | None = None  # how the last frame was cut (benchmarks, tests)
        self._progress: _Progress | None = None
        self.tta = bool(tta)
        self.diameter = self._check_diameter(diameter)
        # (frame, diameter) of the last frame measured with diameter="auto": a frame is measured once.
        self._measured: tuple[np.ndarray, float | None] | None = None
        # The objects' diameter used for the last frame (image pixels), None if the model's down scaling was.
        self.last_diameter: float | None = None
        # The factor the last frame was scaled by for the network (the down scaling: the model's own scale).
        self.last_scale: float = settings.data.downscale
        # Mixed precision and memory layout as in training (engine.accel): on a CUDA GPU by default.
        self._amp = accel.autocast_dtype(device, settings.train.precision)
        self._format = accel.memory_format(device, self._amp)
        if model is not None and hasattr(model, "to"):
            model.to(memory_format=self._format)

    def _check_diameter(self, diameter):
        if diameter is None:
            return None
        if self.app.whole_image:
            raise SettingsError("An object diameter does not apply to image classification: the whole image is "
                                "resized to the network's input.")
        if not self.app.model_diameter(self.settings):
            raise SettingsError("This model does not record the size of the objects it was trained on (it was "
                                "saved by an older napari-mia): predict without an object diameter, or train it "
                                "again to record it.")
        if diameter == "auto":
            return diameter
        try:
            value = float(diameter)
        except (TypeError, ValueError):
            raise SettingsError(f"The object diameter must be a number of pixels or 'auto', got '{diameter}'.") \
                from None
        if not value > 0:
            raise SettingsError(f"The object diameter must be a positive number of pixels, got {diameter}.")
        return value

    def diameter_of(self, frame: np.ndarray) -> float | None:
        """The objects' diameter in `frame` (image pixels) that prediction uses; None: the model's scale."""
        if self.diameter != "auto":
            return self.diameter
        if self._measured is None or not _same_frame(self._measured[0], frame):
            from .scale import estimate_diameter

            self._measured = (frame, estimate_diameter(frame))
        return self._measured[1]

    def scale_of(self, frame: np.ndarray) -> float:
        """The factor from `frame`'s pixels to the network's: the down scaling, or the diameters' ratio."""
        d = self.diameter_of(frame) if self.diameter is not None else None
        self.last_diameter = d
        own = self.last_scale = self.settings.data.downscale
        if d is None:  # no diameter given, or none found in the image: the model's own scale
            return own
        factor = float(np.clip(self.app.model_diameter(self.settings) / d, MIN_SCALE, MAX_SCALE))
        if self.diameter == "auto" and abs(np.log(factor / own)) < np.log(SAME_SCALE):  # an estimate's noise
            return own
        self.last_scale = factor
        return factor

    @property
    def app(self) -> applications.Application:
        """The application the model serves: it activates and decodes the network's output."""
        return applications.for_settings(self.settings)

    def tiles_per_frame(self, shape: tuple[int, int], scale: float | None = None) -> int:
        """How many tiles a (H, W) frame of the image (before down scaling) is cut into."""
        from .images import scaled_shape

        if self.tile is None:
            return 1
        return self.plan(scaled_shape(tuple(shape[:2]), self.settings.data.downscale if scale is None else scale)
                         ).tiles

    def plan(self, shape: tuple[int, int]) -> TilePlan:
        """How a (H, W) frame at the network's scale is cut into tiles."""
        h, w = int(shape[0]), int(shape[1])
        if self.tile == "auto":
            if self.memory is None:
                self.memory = memory_budget(self.device)
            budget = int(self.memory)
            per_pixel = activation_bytes_per_pixel(self.model, self.settings.model.channels, self.device)
            return plan_tiles((h, w), int(budget // per_pixel), self.overlap, self.batch_size)
        # A fixed size: square tiles `overlap` apart, the last one flush with the end, as always.
        th, tw = min(self.tile, _ceil_to(h, STRIDE)), min(self.tile, _ceil_to(w, STRIDE))
        ph, pw = max(h, th), max(w, tw)
        return TilePlan(th, tw, tuple(tile_starts(ph, th, self.overlap)), tuple(tile_starts(pw, tw, self.overlap)),
                        self.batch_size)

    def _start_progress(self, callback, frames: np.ndarray, per_frame_tiles: bool = True) -> None:
        scale = self.scale_of(frames[0]) if per_frame_tiles and self.diameter is not None else None
        per = self.tiles_per_frame(frames.shape[1:3], scale) if per_frame_tiles else 1
        self._progress = None if callback is None else _Progress(callback, len(frames) * per)

    def _tick(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.step(n)

    # -- probabilities ----------------------------------------------------
    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, C) raw frame -> (classes, H, W) float32 probabilities."""
        self.app.check_maps(self.settings)
        x = rescale(normalize(frame, self.settings.data.normalization), self.scale_of(frame), order=1)
        probs = self.maps(x)
        probs = resize_to(probs.transpose(1, 2, 0), frame.shape[:2], order=1).transpose(2, 0, 1)
        return np.ascontiguousarray(probs)

    def maps(self, x: np.ndarray) -> np.ndarray:
        """(H, W, C) network-ready image (normalised, at the network's scale) -> (classes, H, W) maps."""
        return self._tiled(x) if self.tile is not None else self._whole(x)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        try:
            with torch.inference_mode(), accel.autocast(self.device, self._amp):
                t = torch.from_numpy(batch).to(self.device).contiguous(memory_format=self._format)
                if not self.tta:
                    return self.app.activation(self.model(t).float()).cpu().numpy()
                total = None
                for k in range(4):
                    for flip in (False, True):
                        x = torch.rot90(t, k, (2, 3))
                        x = x.flip(3) if flip else x
                        out = self.app.activation(self.model(x).float())
                        if out.ndim == 4:  # maps go back to the tile's orientation; class vectors need not
                            out = torch.rot90(out.flip(3) if flip else out, -k, (2, 3))
                        total = out if total is None else total + out
                return (total / 8).cpu().numpy()
        except (RuntimeError, MemoryError) as e:
            if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
                raise OutOfMemoryError(
                    "Out of memory while predicting. Lower the batch size in the settings, or close other programs."
                ) from e
            raise

    def _whole(self, x: np.ndarray) -> np.ndarray:
        h, w, _ = x.shape
        ph, pw = _ceil_to(h, STRIDE), _ceil_to(w, STRIDE)
        padded = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        self.model.eval()
        out = self._forward(padded.transpose(2, 0, 1)[None])[0, :, :h, :w]
        self._tick()
        return out

    def _tiled(self, x: np.ndarray) -> np.ndarray:
        h, w, c = x.shape
        plan = self.last_plan = self.plan((h, w))
        th, tw = plan.height, plan.width
        # Images smaller than a tile are padded (reflected) up to the tile.
        ph, pw = max(h, th), max(w, tw)
        if (ph, pw) != (h, w):
            x = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        self.model.eval()
        if plan.tiles == 1:  # the whole (padded) image: nothing to blend
            return self._whole(x)[:, :h, :w]
        acc, norm = None, np.zeros((ph, pw), np.float32)
        ramps: dict[tuple, np.ndarray] = {}  # a tile's weights depend only on which image edges it touches
        coords = [(y, x0) for y in plan.ys for x0 in plan.xs]
        for i in range(0, len(coords), plan.batch):
            chunk = coords[i:i + plan.batch]
            batch = np.stack([x[y:y + th, x0:x0 + tw].transpose(2, 0, 1) for y, x0 in chunk])
            out = self._forward(np.ascontiguousarray(batch))
            if acc is None:
                acc = np.zeros((out.shape[1], ph, pw), np.float32)
            for (y, x0), p in zip(chunk, out):
                edges = (y == 0, y + th >= ph, x0 == 0, x0 + tw >= pw)
                if edges not in ramps:
                    wy = _ramp(th, self.overlap, edges[0], edges[1])
                    wx = _ramp(tw, self.overlap, edges[2], edges[3])
                    ramps[edges] = wy[:, None] * wx[None, :]
                wgt = ramps[edges]
                p *= wgt  # in place: `out` is this pass's own array
                acc[:, y:y + th, x0:x0 + tw] += p
                norm[y:y + th, x0:x0 + tw] += wgt
                self._tick()
        acc /= norm
        return acc[:, :h, :w]

    # -- labels -----------------------------------------------------------
    def decode(self, probs: np.ndarray, post: PostProcess | None = None) -> np.ndarray:
        """(classes, H, W) probabilities -> label image (segmentation's decoding, per label mode)."""
        from .applications.segmentation import decode

        return decode(probs, self.settings, post or PostProcess())

    def detect(self, frame: np.ndarray, threshold: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Detection: (H, W[, C]) image -> (N, 4) y, x, class, score of the objects found."""
        from .applications.detection import detect

        return detect(self, frame, threshold, progress)

    def classify(self, image: np.ndarray, rgb: bool | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 name: str = "image") -> list[tuple[int, np.ndarray]]:
        """Classification: one (class index, probabilities over the classes) per frame.

        A 2D or colour image gives a one-element list. Frames are prepared as in
        training (normalised, resized to the input size) and predicted in batches.
        """
        from .applications.classification import classify

        return classify(self, image, rgb, progress, name)

    def predict(self, image: np.ndarray, rgb: bool | None = None, post: PostProcess | None = None,
                progress: Callable[[int, int], None] | None = None, name: str = "image",
                channel_axis: int | None = None) -> np.ndarray:
        """Label image for a 2D image, or a stack of them (same spatial shape).

        `progress(done, total)` is called after each tile, counted over the whole
        image or stack (total = frames x tiles per frame). `channel_axis`: as in ``result``.
        """
        if channel_axis is not None:
            image, rgb = channels_last(image, channel_axis, name), True
        frames = _frames(image, self.settings.model.channels, rgb, name)
        self._start_progress(progress, frames)
        out = []
        for frame in frames:
            out.append(self.decode(self.probabilities(frame), post))
        stack = np.stack(out)
        return stack if is_stack(image, self.settings.model.channels, rgb) else stack[0]

    def result(self, image: np.ndarray, rgb: bool | None = None, post: PostProcess | None = None,
               progress: Callable[[int, int], None] | None = None, name: str = "image",
               channel_axis: int | None = None):
        """What the model's task gives for an image or a stack.

        `progress(done, total)`: called after each tile (classification: each frame),
        counted over the whole image or stack. `channel_axis`: where a multi-channel image holds its
        channels when not last (0 for (C, H, W), 1 for a stack (N, C, H, W)); None: last, or Mono. An
        image whose channel count differs from the model's raises a DataError saying both.

        Segmentation: a label image like `image`. Detection: (N, 4) y, x, class, score, or (N, 5)
        frame, y, x, class, score for a stack. Classification: [(class id, probabilities)] per frame.
        """
        if channel_axis is not None:
            image, rgb = channels_last(image, channel_axis, name), True
        return self.app.result(self, image, rgb=rgb, post=post, progress=progress, name=name)
