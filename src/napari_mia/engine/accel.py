"""Using the hardware well: mixed precision, memory layout, data-loading workers.

Everything here is a no-op on the CPU with the default settings, so results on a
laptop do not change; on a CUDA GPU the defaults turn on what makes it fast
(``TrainSettings.precision``, ``TrainSettings.num_workers``).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os

# Workers per training process when a GPU trains (automatic setting): enough for the default patch pipeline
# to keep a GPU busy (benchmarks/gpu_throughput.py measures the loader alone), few enough for a laptop.
GPU_WORKERS = 4


def autocast_dtype(device, precision: str):
    """The dtype torch.autocast computes in, or None for float32.

    "auto": CUDA only (bfloat16 if the GPU supports it, else float16); "on": also Apple GPUs (float16) and
    CPUs whose oneDNN computes bfloat16 (``fast_bf16``; on other CPUs bfloat16 training is several times
    slower than float32, so they stay in float32 and ``precision_note`` says why); "off": None.
    """
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    kind = getattr(device, "type", str(device))
    if precision == "off" or (precision == "auto" and kind != "cuda") or not fast_bf16(device):
        return None
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.bfloat16


def cpu_bf16_native() -> bool:
    """Whether oneDNN computes bfloat16 on this CPU (x86 with AVX-512 or newer, Arm with bfloat16).

    Elsewhere (e.g. AVX2 only) PyTorch's bfloat16 convolutions take a generic path that is many times slower
    than float32 (benchmarks/real_step.py).
    """
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def fast_bf16(device) -> bool:
    """Whether bfloat16 autocast can pay off on `device`: GPUs, and CPUs whose oneDNN computes it."""
    return getattr(device, "type", str(device)) != "cpu" or cpu_bf16_native()


def precision_note(device, precision: str) -> str:
    """Why mixed precision that the settings ask for is not used on `device` ("" when it is, or is not asked)."""
    if precision != "on" or fast_bf16(device):
        return ""
    return ("Mixed precision is off on this CPU: it has no bfloat16 instructions that PyTorch uses (oneDNN), and "
            "training in bfloat16 would be several times slower than in float32. Training in float32.")


def autocast(device, dtype):
    """torch.autocast for `device` in `dtype`; a context that does nothing when `dtype` is None."""
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=getattr(device, "type", str(device)), dtype=dtype)


def grad_scaler(device, dtype):
    """float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none."""
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    kind = getattr(device, "type", str(device))
    return torch.amp.GradScaler(kind if kind in ("cuda", "cpu", "mps") else "cuda",
                                enabled=dtype is torch.float16 and kind == "cuda")


def precision_name(dtype) -> str:
    """'bf16', 'fp16', or '' for float32 (the TrainingStarted event, the CLI's first line)."""
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "")


def memory_format(device, dtype):
    """channels-last on CUDA with mixed precision, where tensor-core convolutions want it; else contiguous.

    On the CPU it is slower for these networks (oneDNN reorders around every non-convolution layer), so it is
    kept to the one case where it pays.
    """
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        # Training patches have one size, so cuDNN's per-shape autotuning is paid once per run.
        torch.backends.cudnn.benchmark = True
        if dtype is not None:
            return torch.channels_last
    return torch.contiguous_format


def loader_workers(setting: int, device, processes: int = 1) -> int:
    """DataLoader workers: the setting, or (automatic, -1) none on the CPU and up to GPU_WORKERS on a GPU,
    sharing the machine's cores between the training processes."""
    # The training sources read images through closures, which only a forked worker inherits (spawn and
    # forkserver would have to pickle them): without fork (Windows, macOS) the patches are made in-process.
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if setting >= 0:
        return setting
    if getattr(device, "type", str(device)) == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(GPU_WORKERS, cores // max(processes, 1) - 1))


class EpochItems:
    """A run's training items for one process, indexed (epoch, i): one DataLoader (and its persistent
    workers) serves every epoch of the run, and each of `world` processes draws its own share of the epoch's
    items (item ``i * world + rank`` of the application's epoch dataset).

    `make(epoch)` gives an epoch's map-style dataset (``Application.dataset``), whose items depend only on
    (seed, epoch, index): a process draws the same patches whether one or several train.
    """

    def __init__(self, make, batch_size: int, rank: int = 0, world: int = 1):
        self.make, self.rank, self.world = make, rank, world
        self._epoch: tuple[int, object] | None = None
        total = len(self._dataset(0))
        # Every process takes the same number of whole batches (DDP steps in lockstep).
        per = batch_size * world
        self.length = max(per, -(-total // per) * per) // world if world > 1 else total

    def _dataset(self, epoch: int):
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self.make(epoch))
        return self._epoch[1]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        epoch, i = key
        ds = self._dataset(epoch)
        return ds[(i * self.world + self.rank) % len(ds)]


class EpochSampler:
    """(epoch, 0), (epoch, 1), ... for the epoch set last (``set_epoch``), in the main process."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0
        # A time-planned period ends when the clock says, not after n items (engine.plan).
        self.unbounded = False

    def set_epoch(self, epoch: int, unbounded: bool = False) -> None:
        self.epoch, self.unbounded = epoch, unbounded

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        items = itertools.count() if self.unbounded else range(self.n)
        return ((self.epoch, i) for i in items)
