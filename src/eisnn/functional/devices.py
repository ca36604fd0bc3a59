"""Which kernels compute the fused operations on a tensor's device: the one place that chooses.

``tiers`` decides whether an operation may use kernels at all (the ``kernel`` tier);
``device_kernels`` then names the module whose one-pass kernels run on this tensor, by device:

- CPU: ``cpu_kernels`` (C), when they could be built (``EISNN_CPU_KERNELS=0`` turns them off);
- CUDA: ``triton_kernels`` (Triton), imported on first use; where Triton is missing, one warning
  says so;

in both cases on contiguous float32 tensors only. ``None`` means the PyTorch-op path of the fused
operation. Both modules have the same functions (``ei_forward``, ``ei_backward``, ``lif_forward``,
``lif_backward``, see ``cpu_kernels``), so the operations call either the same way. The choice
reads only the tensor's metadata, so the fake (shape-only) implementations of the operations
make the same choice as the real ones.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from types import ModuleType

import torch

from . import cpu_kernels

_triton: ModuleType | None = None
_triton_failed = False


def _triton_kernels() -> ModuleType | None:
    """``triton_kernels`` when Triton can run them, else ``None`` (warning once why)."""
    global _triton, _triton_failed
    if _triton is None and not _triton_failed:
        try:  # through sys.modules (not the package attribute), so a stand-in module is honoured
            triton_kernels = import_module("eisnn.functional.triton_kernels")
            if not triton_kernels.available():
                raise ImportError("triton_kernels.available() is false")
            _triton = triton_kernels
        except ImportError as error:
            _triton_failed = True
            warnings.warn(
                f"eisnn: Triton kernels unavailable ({error}); "
                "the LIF and E-I layers run as PyTorch operations on CUDA",
                stacklevel=3,
            )
    return _triton


def device_kernels(x: torch.Tensor, kernel: bool) -> ModuleType | None:
    """The kernel module for ``x`` (``cpu_kernels`` on CPU, ``triton_kernels`` on CUDA), or
    ``None`` for the PyTorch-op path: when ``kernel`` is false, ``x`` is not a contiguous float32
    tensor, or the device's kernels are unavailable."""
    if not kernel or x.dtype != torch.float32 or not x.is_contiguous():
        return None
    if x.device.type == "cpu":
        return cpu_kernels if cpu_kernels.usable(x) else None
    if x.device.type == "cuda":
        return _triton_kernels()
    return None
