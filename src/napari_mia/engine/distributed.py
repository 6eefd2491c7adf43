"""Training in several processes with torch.distributed (``torchrun --nproc-per-node N -m napari_mia.cli train``).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE in each process; ``init_from_env``
joins the group (NCCL between CUDA GPUs, gloo otherwise). The Trainer then asks
``current()``: each process draws its own share of the epoch's patches,
DistributedDataParallel averages the gradients, validation sums are reduced,
and stopping is agreed so that no process waits for another that has left.
Only rank 0 writes or prints (the CLI's side).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import SettingsError


@dataclass(frozen=True)
class Group:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> Group | None:
    """Join the process group torchrun described; None when this process trains alone.

    `device`: the device setting. CUDA processes take the GPU of their local rank and talk over NCCL;
    CPU ones (``--device cpu`` or no GPU) over gloo.
    """
    if not launched():
        return None
    # lazy: torch takes seconds to import, and napari-mia --help imports this module
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise SettingsError(f"Process {local} has no GPU of its own: this machine has {torch.cuda.device_count()}. "
                                "Start at most that many processes (--nproc-per-node).")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return current()


def current() -> Group | None:
    """The process group this process trains in, if it has more than one process."""
    try:
        import torch.distributed as dist  # lazy: seconds to import; napari-mia --help imports this module
    except ImportError:  # a torch built without distributed support
        return None
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                 dist.get_backend())


def device_for(group: Group | None, name: str) -> str:
    """The device setting a process uses: 'auto' and 'cuda' become this process's own GPU."""
    if group is None or group.backend != "nccl" or name not in ("auto", "cuda"):
        return name
    return f"cuda:{group.local_rank}"


def all_max(values: list[float], device) -> list[float]:
    """The largest of each value over the processes (flags: one process stopping stops them all)."""
    # lazy: torch takes seconds to import, and napari-mia --help imports this module
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_sum(values, device):
    """The sum of each value (a list of numbers or a numpy array) over the processes, as given."""
    # lazy: torch takes seconds to import, and napari-mia --help imports this module
    import torch
    import torch.distributed as dist

    arr = np.asarray(values, dtype=np.float64)
    t = torch.from_numpy(arr.copy()).to(device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    out = t.cpu().numpy()
    return out.astype(np.asarray(values).dtype) if isinstance(values, np.ndarray) else out.tolist()


def broadcast(value, device):
    """Rank 0's float (or None) on every process."""
    # lazy: torch takes seconds to import, and napari-mia --help imports this module
    import torch
    import torch.distributed as dist

    t = torch.tensor([math.nan if value is None else float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, 0)
    v = float(t.item())
    return None if math.isnan(v) else v


def finish() -> None:
    """Leave the process group (at the end of a distributed CLI run)."""
    import torch.distributed as dist  # lazy: seconds to import; napari-mia --help imports this module

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
