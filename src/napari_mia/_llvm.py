"""Keep triton out of a process where Mesa's OpenGL has already loaded LLVM.

torch imports triton as soon as anything touches ``torch._dynamo`` (torchvision
does, and segmentation-models-pytorch imports torchvision). triton's compiled
library carries its own copy of LLVM; when Mesa's software or AMD/Intel OpenGL
driver has already loaded the system's ``libLLVM`` with global symbols (napari
on llvmpipe, on Xvfb, in most virtual machines and remote desktops), loading
triton's copy on top of it crashes the whole process, taking the user's
unsaved labels with it.

triton only compiles GPU kernels for ``torch.compile``, which napari-mia does
not use, so in that one situation it is marked as absent: torch then treats it
as not installed and trains in eager mode on CPU and CUDA alike.
"""

from __future__ import annotations

import sys


def system_llvm_loaded() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return any("libLLVM" in line for line in f)
    except OSError:  # not Linux: no such clash known
        return False


def keep_triton_out_if_llvm_loaded() -> bool:
    """Call before torch's first use; True if triton is kept out."""
    if "triton" in sys.modules:  # decided already, or loaded first and safe
        return sys.modules["triton"] is None
    if not system_llvm_loaded():
        return False
    sys.modules["triton"] = None  # `import triton` now raises ImportError
    return True
