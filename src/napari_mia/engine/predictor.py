"""Tiled prediction of images of any size, in bounded memory.

Each frame is normalised and down-scaled as a whole (as in training), cut
into overlapping tiles, and the tiles' probabilities are blended with weights
that fall off towards the inner tile edges, where a network sees least
context. Probabilities are scaled back to the frame's size before decoding.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import accel, applications
from .errors import OutOfMemoryError, SettingsError
from .images import channels_last, finite_frames, is_stack, normalize, rescale, resize_to, scaled_shape
from .scale import SAME_SCALE, estimate_diameter
from .settings import Settings
from .targets import PostProcess
from .tiling import STRIDE, TilePlan, activation_bytes_per_pixel, ceil_to, memory_budget, plan_tiles, ramp, \
    tile_starts

# How far an object diameter may rescale an image for the network: beyond this the estimate is
# almost surely wrong (noise taken for tiny objects), and memory would grow with the square.
MIN_SCALE, MAX_SCALE = 1 / 16, 4.0


class _Progress:
    """(done, total) over a whole image or stack, told to `callback` after each tile."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int):
        self.callback, self.total, self.done = callback, max(int(total), 1), 0

    def step(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)


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
    few tiles as fit, see ``plan_tiles``), a tile size (square tiles, `overlap` apart, as they always were), or None
    (always the whole image). `memory`: the budget of "auto" in bytes; None: ``memory_budget(device)`` when
    first needed, then kept, so that every image and frame this Predictor sees is cut the same way.
    """

    def __init__(self, model, settings: Settings, device, tile: int | str | None = "auto", overlap: int = 128,
                 batch_size: int | None = None, diameter: float | str | None = None, tta: bool = False,
                 memory: int | None = None, app: applications.Application | None = None):
        self.model, self.settings, self.device = model, settings, device
        # The application the model serves: it activates and decodes the network's output.
        self.app = app if app is not None else applications.for_settings(settings)
        if isinstance(tile, str) and tile != "auto":
            raise SettingsError(f"The tile size must be a number of pixels or 'auto', got '{tile}'.")
        self.tile = tile if tile is None or tile == "auto" else max(ceil_to(int(tile), STRIDE), STRIDE)
        self.overlap = overlap if not isinstance(self.tile, int) else min(overlap, self.tile // 2)
        self.memory = memory
        self.batch_size = batch_size or max(1, settings.train.batch_size)
        self.last_plan: TilePlan | None = None  # how the last frame was cut (benchmarks, tests)
        self._progress: _Progress | None = None
        self.tta = bool(tta)
        # With tta: each output holds the views' mean, then the mean of their squares (engine.uncertainty).
        self.moments = False
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

    def tiles_per_frame(self, shape: tuple[int, int], scale: float | None = None) -> int:
        """How many tiles a (H, W) frame of the image (before down scaling) is cut into."""
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
        th, tw = min(self.tile, ceil_to(h, STRIDE)), min(self.tile, ceil_to(w, STRIDE))
        ph, pw = max(h, th), max(w, tw)
        return TilePlan(th, tw, tuple(tile_starts(ph, th, self.overlap)), tuple(tile_starts(pw, tw, self.overlap)),
                        self.batch_size)

    def start_progress(self, callback, frames: np.ndarray, per_frame_tiles: bool = True) -> None:
        scale = self.scale_of(frames[0]) if per_frame_tiles and self.diameter is not None else None
        per = self.tiles_per_frame(frames.shape[1:3], scale) if per_frame_tiles else 1
        self._progress = None if callback is None else _Progress(callback, len(frames) * per)

    def tick(self, n: int = 1) -> None:
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

    def forward(self, batch: np.ndarray) -> np.ndarray:
        import torch  # lazy: seconds to import, and napari-mia --help imports this module

        try:
            with torch.inference_mode(), accel.autocast(self.device, self._amp):
                t = torch.from_numpy(batch).to(self.device).contiguous(memory_format=self._format)
                if not self.tta:
                    return self.app.activation(self.model(t).float()).cpu().numpy()
                total = squares = None
                for k in range(4):
                    for flip in (False, True):
                        x = torch.rot90(t, k, (2, 3))
                        x = x.flip(3) if flip else x
                        out = self.app.activation(self.model(x).float())
                        if out.ndim == 4:  # maps go back to the tile's orientation; class vectors need not
                            out = torch.rot90(out.flip(3) if flip else out, -k, (2, 3))
                        total = out if total is None else total + out
                        if self.moments:
                            squares = out * out if squares is None else squares + out * out
                if self.moments:  # blended and resized like the mean: their difference is the views' variance
                    return torch.cat([total / 8, squares / 8], 1).cpu().numpy()
                return (total / 8).cpu().numpy()
        except (RuntimeError, MemoryError) as e:
            if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
                raise OutOfMemoryError(
                    "Out of memory while predicting. Lower the batch size in the settings, or close other programs."
                ) from e
            raise

    def _whole(self, x: np.ndarray) -> np.ndarray:
        h, w, _ = x.shape
        ph, pw = ceil_to(h, STRIDE), ceil_to(w, STRIDE)
        padded = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        self.model.eval()
        out = self.forward(padded.transpose(2, 0, 1)[None])[0, :, :h, :w]
        self.tick()
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
            out = self.forward(np.ascontiguousarray(batch))
            if acc is None:
                acc = np.zeros((out.shape[1], ph, pw), np.float32)
            for (y, x0), p in zip(chunk, out):
                edges = (y == 0, y + th >= ph, x0 == 0, x0 + tw >= pw)
                if edges not in ramps:
                    wy = ramp(th, self.overlap, edges[0], edges[1])
                    wx = ramp(tw, self.overlap, edges[2], edges[3])
                    ramps[edges] = wy[:, None] * wx[None, :]
                wgt = ramps[edges]
                p *= wgt  # in place: `out` is this pass's own array
                acc[:, y:y + th, x0:x0 + tw] += p
                norm[y:y + th, x0:x0 + tw] += wgt
                self.tick()
        acc /= norm
        return acc[:, :h, :w]

    # -- labels -----------------------------------------------------------
    def decode(self, probs: np.ndarray, post: PostProcess | None = None) -> np.ndarray:
        """(classes, H, W) probabilities -> label image (segmentation's decoding, per label mode)."""
        return self.app.decode(probs, self.settings, post or PostProcess())

    def detect(self, frame: np.ndarray, threshold: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Detection: (H, W[, C]) image -> (N, 4) y, x, class, score of the objects found."""
        return self.app.detect(self, frame, threshold, progress)

    def classify(self, image: np.ndarray, rgb: bool | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 name: str = "image") -> list[tuple[int, np.ndarray]]:
        """Classification: one (class index, probabilities over the classes) per frame.

        A 2D or colour image gives a one-element list. Frames are prepared as in
        training (normalised, resized to the input size) and predicted in batches.
        """
        return self.app.classify(self, image, rgb, progress, name)

    def predict(self, image: np.ndarray, rgb: bool | None = None, post: PostProcess | None = None,
                progress: Callable[[int, int], None] | None = None, name: str = "image",
                channel_axis: int | None = None) -> np.ndarray:
        """Label image for a 2D image, or a stack of them (same spatial shape).

        `progress(done, total)` is called after each tile, counted over the whole
        image or stack (total = frames x tiles per frame). `channel_axis`: as in ``result``.
        """
        if channel_axis is not None:
            image, rgb = channels_last(image, channel_axis, name), True
        frames = finite_frames(image, self.settings.model.channels, rgb, name)
        self.start_progress(progress, frames)
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
