"""One-pass CPU kernels: the element-wise part of the fused E-I integration and the multi-step
LIF neuron (``cpu_kernels.c``).

The C source is compiled on first use with the system C compiler (``$CC``, else ``cc``; plain
C with OpenMP, about a second) into ``$EISNN_KERNEL_CACHE`` (default ``~/.cache/eisnn``), keyed
by a hash of the source and flags and written atomically, and loaded with ``ctypes``; each call
runs on ``torch.get_num_threads()`` OpenMP threads. Where no compiler is found,
the build fails, or ``EISNN_CPU_KERNELS=0``, ``usable`` is false and ``functional.ei_fused`` and
``functional.lif`` run the same maths as PyTorch element-wise ops (one warning says why).
``functional.devices`` chooses them for CPU tensors; ``triton_kernels`` has the same functions for
CUDA.

    ei_forward:    a = I_EE - sub, out = g a / stabilize(div) + b        (bit-identical to PyTorch)
                   (or, balanced, ``a`` given: out only)
    ei_backward:   dI_EE = g G / q, g G a / q^2 (= -dL/d div), sums of G a / q and of G
    lif_forward:   spikes of X [T, ...]                                   (bit-identical to PyTorch)
    lif_backward:  dL/dX from X and dL/dS (H recomputed, nothing saved but X)
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch

from . import tuning

SOURCE = Path(__file__).with_name("cpu_kernels.c")
FLAGS = [
    "-O3",
    "-std=c99",
    "-ffp-contract=off",
    "-fno-trapping-math",
    "-fopenmp",
    "-fPIC",
    "-shared",
    f"-DEISNN_BLOCK={tuning.KERNEL_BLOCK}",
    f"-DEISNN_MIN_PARALLEL={tuning.KERNEL_MIN_PARALLEL}",
]
SURROGATE_CODES = {"sigmoid": 0, "arctan": 1}
STABILIZATION_CODES = {"none": 0, "epsilon": 1, "adaptive": 2}

# argument types of the kernels: p pointer, l long, f float, i int
CTYPES = {"p": ctypes.c_void_p, "l": ctypes.c_long, "f": ctypes.c_float, "i": ctypes.c_int}
SIGNATURES = {
    "ei_forward_f32": "p l p p p p p p l l l i f i",
    "ei_backward_f32": "p p p p l p p p p l l l i f i",
    "lif_forward_f32": "p p l l f f i",
    "lif_backward_f32": "p p p l l f f i f f i",
}

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failed = False


def _cache_dir() -> Path:
    return Path(os.environ.get("EISNN_KERNEL_CACHE") or Path.home() / ".cache" / "eisnn")


def _build() -> Path:
    """Compile ``SOURCE`` unless a library of the same source and flags is cached; returns its
    path."""
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C compiler {compiler!r} on PATH")
    digest = hashlib.sha256(
        SOURCE.read_bytes() + " ".join([compiler, *FLAGS]).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"cpu_kernels-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, *FLAGS, "-o", partial, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            stderr = done.stderr.strip()
            raise RuntimeError(
                f"{compiler} failed: {stderr.splitlines()[-1] if stderr else done.returncode}"
            )
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _load() -> ctypes.CDLL | None:
    global _library, _failed
    with _lock:
        if _library is None and not _failed:
            try:
                library = ctypes.CDLL(str(_build()))
                for name, spec in SIGNATURES.items():
                    getattr(library, name).argtypes = [CTYPES[c] for c in spec.split()]
                library.lif_backward_f32.restype = ctypes.c_int
                _library = library
            except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                _failed = True
                warnings.warn(
                    f"eisnn: CPU kernels unavailable ({error}); "
                    "the LIF and E-I layers run as PyTorch operations",
                    stacklevel=3,
                )
    return _library


def usable(x: torch.Tensor) -> bool:
    """Whether the kernels compute on ``x``: a contiguous float32 CPU tensor, kernels built.

    Reads metadata only (a fake tensor under ``torch.compile`` gets the same answer as the real
    one): the kernels run inside the custom operations, which compiled graphs call as they are."""
    if (
        os.environ.get("EISNN_CPU_KERNELS", "1") == "0"
        or x.device.type != "cpu"
        or x.dtype != torch.float32
    ):
        return False
    if not x.is_contiguous() or x.dim() < 1:
        return False
    return _load() is not None


def _sample_stride(t: torch.Tensor) -> int:
    """Sample stride of ``t [N, n_E, P]``, a channel slice of a contiguous ``[N, C, P]``."""
    if t.stride(2) != 1 or t.stride(1) != t.shape[2]:
        raise ValueError("the E-I kernels take channel slices of contiguous [N, C, P] tensors")
    return t.stride(0)


def ei_forward(
    i_ee: torch.Tensor | None,
    sub: torch.Tensor,
    div: torch.Tensor,
    g: torch.Tensor,
    b: torch.Tensor,
    mode: str,
    epsilon: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sub := a = I_EE - sub`` and ``out = g a / stabilize(div) + b`` (``sub, div`` contiguous
    ``[N, n_E, P]``, ``I_EE`` a channel slice); returns ``out`` and the adaptive mode's row minima
    ``[N, 1, 1]`` (zeros otherwise). ``i_ee`` ``None``: the balanced mode, ``sub`` holds ``a``
    already and is only read."""
    n, e, p = sub.shape
    g, b = g.contiguous(), b.contiguous()
    out, row_min = torch.empty_like(sub), sub.new_empty(n)
    _library.ei_forward_f32(
        None if i_ee is None else i_ee.data_ptr(),
        0 if i_ee is None else _sample_stride(i_ee),
        sub.data_ptr(),
        div.data_ptr(),
        out.data_ptr(),
        g.data_ptr(),
        b.data_ptr(),
        row_min.data_ptr(),
        n,
        e,
        p,
        STABILIZATION_CODES[mode],
        epsilon,
        torch.get_num_threads(),
    )
    return out, row_min.view(n, 1, 1)


def ei_backward(
    grad: torch.Tensor,
    a: torch.Tensor,
    div: torch.Tensor,
    d_ee: torch.Tensor,
    g: torch.Tensor,
    row_min: torch.Tensor,
    mode: str,
    epsilon: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``d_ee := g G / q`` and ``div := g G a / q^2`` (``grad, a, div`` contiguous ``[N, n_E, P]``,
    ``d_ee`` a channel slice); returns the sums over samples and positions of ``G a / q`` and of
    ``G``."""
    n, e, p = a.shape
    g, row_min = g.contiguous(), row_min.contiguous()
    sum_g, sum_b = a.new_empty(n, e), a.new_empty(n, e)
    _library.ei_backward_f32(
        grad.data_ptr(),
        a.data_ptr(),
        div.data_ptr(),
        d_ee.data_ptr(),
        _sample_stride(d_ee),
        g.data_ptr(),
        row_min.data_ptr(),
        sum_g.data_ptr(),
        sum_b.data_ptr(),
        n,
        e,
        p,
        STABILIZATION_CODES[mode],
        epsilon,
        torch.get_num_threads(),
    )
    return sum_g.sum(0), sum_b.sum(0)


def lif_forward(x: torch.Tensor, tau: float, v_threshold: float) -> torch.Tensor:
    """Spikes ``[T, ...]`` of the LIF over the contiguous float32 input ``x [T, ...]``."""
    spikes = torch.empty_like(x)
    _library.lif_forward_f32(
        x.data_ptr(),
        spikes.data_ptr(),
        x.shape[0],
        x[0].numel(),
        tau,
        v_threshold,
        torch.get_num_threads(),
    )
    return spikes


def lif_backward(
    x: torch.Tensor,
    grad_spikes: torch.Tensor,
    tau: float,
    v_threshold: float,
    surrogate: str,
    alpha: float,
) -> torch.Tensor:
    """``dL/dX`` of the LIF from its input ``x`` and ``dL/dS`` (both contiguous float32
    ``[T, ...]``)."""
    grad_spikes = grad_spikes.contiguous()
    grad_x = torch.empty_like(x)
    failed = _library.lif_backward_f32(
        x.data_ptr(),
        grad_spikes.data_ptr(),
        grad_x.data_ptr(),
        x.shape[0],
        x[0].numel(),
        tau,
        v_threshold,
        SURROGATE_CODES[surrogate],
        alpha,
        math.pi / 2.0 * alpha,
        torch.get_num_threads(),
    )
    if failed:
        raise MemoryError(f"LIF backward: no memory for the membrane history of {x.shape[0]} steps")
    return grad_x
