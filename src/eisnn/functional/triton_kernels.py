"""One-pass Triton kernels: the CUDA implementation of the E-I element-wise work and the
multi-step LIF neuron, with the contract of ``cpu_kernels`` (same functions, arguments and
in-place writes), so that the fused nodes can call either.

    ei_forward:    a = I_EE - sub (over sub), out = g a / stabilize(div) + b
    ei_backward:   dI_EE = g G / q, div := g G a / q^2 (= -dL/d div), sums of G a / q and of G
    lif_forward:   spikes of X [T, ...], the membrane in registers
    lif_backward:  dL/dX from X and dL/dS: H recomputed over T (kept in registers up to
                   ``HISTORY_STEPS`` steps, else in a [T, ...] float32 buffer), then the
                   surrogate recurrence backwards in time

The kernels (``triton_jit``) run on CUDA tensors, or on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, set before the first call); ``triton`` is imported on first use only, so
``import eisnn`` never needs it. Inputs may be float32, bfloat16 or float16: the kernels compute
in float32; ``out``, ``a`` (over ``sub``), spikes, ``dI_EE``, ``div`` and ``dL/dX`` are written
in their buffers' dtypes (those of the inputs), the row minima and the per-channel sums are
float32.

Rounding follows the eager PyTorch ops on the tensors' device, so that spikes are bit-identical
to ``lif_multistep_eager`` on the same device: no fused multiply-adds, IEEE divisions in the
forward passes, ``X + 0.5 V`` for ``tau == 2``, and ``V / tau`` as ``V * (1 / tau)`` on CUDA
(where PyTorch divides by a Python scalar that way), a true division elsewhere.
"""

from __future__ import annotations

import functools
import math
import os
from types import ModuleType

import torch

from .cpu_kernels import STABILIZATION_CODES, SURROGATE_CODES, _sample_stride

HISTORY_STEPS = 16
"""Up to this many steps the LIF backward keeps ``H`` in registers (one compiled kernel per
``T``); longer sequences keep it in a float32 buffer of the input's size."""

LIF_BLOCK = 1024
LIF_BACKWARD_BLOCK = 256
EI_TILE = 1024
ROW_BLOCK = 1024
NUM_WARPS = 4
"""Elements per program (LIF), per ``[channels, positions]`` tile (E-I) and per step of the row
minimum; warps per program. Not yet measured on a GPU: they change speed, never results."""

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def available() -> bool:
    """Whether the kernels can run: ``triton`` importable and CUDA present, or the interpreter
    on (``TRITON_INTERPRET=1``)."""
    return _triton_importable() and (_interpreting() or torch.cuda.is_available())


def _kernels() -> ModuleType:
    """The ``@triton.jit`` kernels (imported here, on first use)."""
    from . import triton_jit

    return triton_jit


def _check(*tensors: torch.Tensor) -> None:
    """Refuse tensors the kernels cannot read, in one line."""
    for t in tensors:
        if t.dtype not in DTYPES:
            raise ValueError(f"the Triton kernels take float32, bfloat16 or float16, not {t.dtype}")
        if not (t.is_cuda or (_interpreting() and t.device.type == "cpu")):
            raise ValueError(
                f"the Triton kernels take CUDA tensors (CPU ones under TRITON_INTERPRET=1), "
                f"not {t.device.type}"
            )


def _cdiv(a: int, b: int) -> int:
    """``ceil(a / b)``: the number of programs of ``b`` items covering ``a`` items."""
    return -(-a // b)


def _launch(kernel, grid: tuple[int, ...], *args, **constants) -> None:
    """``kernel[grid](*args)`` with ``NUM_WARPS`` warps and no fused multiply-adds."""
    kernel[grid](*args, **constants, num_warps=NUM_WARPS, enable_fp_fusion=False)


def _tau_arguments(x: torch.Tensor, tau: float) -> tuple[tuple[float, float], dict[str, bool]]:
    """``(tau, 1 / tau)`` (the reciprocal rounded in float32, as PyTorch computes it) and the
    rounding switches of ``V / tau`` for ``x``'s device."""
    one, divisor = torch.tensor([1.0, tau], dtype=torch.float32)
    reciprocal = float(one / divisor)
    return (tau, reciprocal), {"TAU_HALF": tau == 2.0, "RECIPROCAL": x.is_cuda}


def lif_forward(x: torch.Tensor, tau: float, v_threshold: float) -> torch.Tensor:
    """Spikes ``[T, ...]`` (in ``x``'s dtype) of the LIF over the input ``x [T, ...]``."""
    _check(x)
    x = x.contiguous()
    spikes = torch.empty_like(x)
    if x.numel() == 0:
        return spikes
    m = x[0].numel()
    taus, rounding = _tau_arguments(x, tau)
    _launch(
        _kernels().lif_forward_kernel,
        (_cdiv(m, LIF_BLOCK),),
        *(x, spikes, x.shape[0], m, *taus, v_threshold),
        **rounding,
        BLOCK=LIF_BLOCK,
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
    """``dL/dX`` (in ``x``'s dtype) of the LIF from its input ``x`` and ``dL/dS`` (both
    ``[T, ...]``), with the ``sigmoid`` or ``arctan`` surrogate of sharpness ``alpha``."""
    if surrogate not in SURROGATE_CODES:
        raise ValueError(
            f"the kernels have no surrogate {surrogate!r}; choose one of {sorted(SURROGATE_CODES)}"
        )
    _check(x, grad_spikes)
    x, grad_spikes = x.contiguous(), grad_spikes.contiguous()
    grad_x = torch.empty_like(x)
    if x.numel() == 0:
        return grad_x
    steps, m = x.shape[0], x[0].numel()
    taus, rounding = _tau_arguments(x, tau)
    scalars = (*taus, v_threshold, alpha, math.pi / 2.0 * alpha)
    constants = {**rounding, "SIGMOID": surrogate == "sigmoid", "BLOCK": LIF_BACKWARD_BLOCK}
    grid = (_cdiv(m, LIF_BACKWARD_BLOCK),)
    kernels = _kernels()
    if steps <= HISTORY_STEPS:
        history = 1 << (steps - 1).bit_length()
        _launch(
            kernels.lif_backward_registers_kernel,
            grid,
            *(x, grad_spikes, grad_x, m, *scalars),
            STEPS=steps,
            HISTORY=history,
            **constants,
        )
    else:
        h = grad_x if grad_x.dtype == torch.float32 else torch.empty_like(x, dtype=torch.float32)
        _launch(
            kernels.lif_backward_history_kernel,
            grid,
            *(x, grad_spikes, grad_x, h, steps, m, *scalars),
            **constants,
        )
    return grad_x


def _tile(e: int, p: int) -> tuple[int, int]:
    """``(channels, positions)`` of an E-I tile: powers of two, at most ``EI_TILE`` elements."""
    positions = min(1 << (p - 1).bit_length(), EI_TILE)
    return min(1 << (e - 1).bit_length(), EI_TILE // positions), positions


def _check_mode(mode: str) -> None:
    if mode not in STABILIZATION_CODES:
        raise ValueError(
            f"unknown stabilization {mode!r}; choose one of {sorted(STABILIZATION_CODES)}"
        )


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
    ``[N, n_E, P]``, ``I_EE`` a channel slice); returns ``out`` (``sub``'s dtype) and the adaptive
    mode's float32 row minima ``[N, 1, 1]`` (smallest non-zero entry of each sample's ``div``,
    ``+inf`` when none, NaN when ``div`` has one; zeros in the other modes). ``i_ee`` ``None``:
    the balanced mode, ``sub`` holds ``a`` already and is only read."""
    _check_mode(mode)
    balanced = i_ee is None
    i_ee = sub if balanced else i_ee  # not read when balanced
    _check(i_ee, sub, div, g, b)
    n, e, p = sub.shape
    out = torch.empty_like(sub)
    row_min = torch.zeros(n, dtype=torch.float32, device=sub.device)
    if sub.numel() == 0:
        return out, row_min.view(n, 1, 1)
    kernels = _kernels()
    if mode == "adaptive":
        _launch(kernels.row_min_kernel, (n,), div, row_min, e * p, BLOCK=ROW_BLOCK)
    channels, positions = _tile(e, p)
    _launch(
        kernels.ei_forward_kernel,
        (n, _cdiv(e, channels), _cdiv(p, positions)),
        *(i_ee, _sample_stride(i_ee), sub, div, out, g.contiguous(), b.contiguous(), row_min),
        *(e, p, epsilon),
        MODE=mode,
        BALANCED=balanced,
        BLOCK_C=channels,
        BLOCK_P=positions,
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
    """``d_ee := g G / q`` and ``div := g G a / q^2`` (``grad, a, div`` contiguous
    ``[N, n_E, P]``, ``d_ee`` a channel slice); returns the float32 sums over samples and
    positions of ``G a / q`` and of ``G`` (per channel, ``[n_E]``)."""
    _check_mode(mode)
    _check(grad, a, div, d_ee, g)
    n, e, p = a.shape
    sums = torch.zeros(2, n, e, dtype=torch.float32, device=a.device)
    if a.numel() == 0:
        return sums[0].sum(0), sums[1].sum(0)
    channels, positions = _tile(e, p)
    _launch(
        _kernels().ei_backward_kernel,
        (n, _cdiv(e, channels)),
        *(grad.contiguous(), a, div, d_ee, _sample_stride(d_ee), g.contiguous()),
        *(row_min.reshape(n).to(torch.float32).contiguous(), sums[0], sums[1], e, p, epsilon),
        MODE=mode,
        BLOCK_C=channels,
        BLOCK_P=positions,
    )
    return sums[0].sum(0), sums[1].sum(0)
