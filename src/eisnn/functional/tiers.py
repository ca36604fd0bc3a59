"""The E-I integration and the multi-step LIF as operations, and the one place that chooses which
implementation tier computes them.

Tiers, from the reference down (each tested against the one above):

- ``eager``: the equations as PyTorch expressions, differentiated by autograd (``ei``, ``lif``);
- ``fused``: one custom operation (``eisnn::...``) per operation with a hand-written backward, in
  PyTorch ops;
- ``kernel``: the fused node with its element-wise work in the device's one-pass kernels where
  they take the tensor (``devices.device_kernels``: C on CPU, Triton on CUDA, contiguous
  float32; else the node's PyTorch ops).

By default (``auto``) the fastest tier that computes the configuration runs. ``use_tier`` forces
one, for a comparison or a parity check; a configuration that a tier cannot compute (the readout,
spiking I units, adaptive stabilization without the straight-through estimator) runs eagerly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from . import cpu_kernels
from .ei import STABILIZATIONS, ei_integrate_eager, split_currents
from .ei_fused import ei_integrate_fused, fused_supported
from .lif import lif_multistep_eager, lif_multistep_fused
from .precision import ei_integrate_balanced
from .surrogate import surrogate_derivative

TIERS: tuple[str, ...] = ("auto", "eager", "fused", "kernel")
_forced = "auto"  # a plain global, which torch.compile can trace (a ContextVar it cannot)


@contextmanager
def use_tier(tier: str) -> Iterator[None]:
    """Run the E-I integration and the LIF with ``tier`` (one of ``TIERS``) inside the block.

    ``kernel`` falls back to ``fused`` on tensors the kernels cannot take. The setting is
    process-wide (not per thread).
    """
    global _forced
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {list(TIERS)}")
    previous, _forced = _forced, tier
    try:
        yield
    finally:
        _forced = previous


def select_tier(fusable: bool = True, kernel_ready: bool = True) -> str:
    """The tier for one call: the forced one if it can compute it, else the fastest that can.
    ``fusable``: the fused node computes the configuration; ``kernel_ready``: so would the
    kernels (which then run where the device has them, ``devices.device_kernels``)."""
    forced = _forced
    if forced == "eager" or not fusable:
        return "eager"
    if forced == "fused" or not kernel_ready:
        return "fused"
    return "kernel"


def ei_integrate(
    currents: torch.Tensor,
    n_excitatory: int,
    w_ei: torch.Tensor,
    g_i: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    *,
    s_i: torch.Tensor | None = None,
    leak: torch.Tensor | float | None = None,
    readout: bool = False,
    stabilization: str = "adaptive",
    epsilon: float = 1e-8,
    ste: bool = True,
    balanced: bool = False,
) -> torch.Tensor:
    """The E-I integration (``ei``) of the stacked currents ``[I_EE; I_I]``, split after
    ``n_excitatory`` channels.

    ``s_i``: the I units' output when they are not the paper's ReLU units (spikes of spiking I
    units; default ``I_I``). ``leak``: a leak conductance ``g_L`` added to the divisive current
    in place of the stabilization. ``readout``: return ``I_EE - sub`` only. ``stabilization``,
    ``epsilon``, ``ste``: how a zero ``div`` is handled (SPEC section 2). ``balanced``: the
    currents are ``[I_EE - sub; I_I]`` already (the folded weight's map under autocast,
    ``precision``), integrated in at least float32 (eager tier: ``ei_integrate_balanced``).
    """
    if stabilization not in STABILIZATIONS:
        raise ValueError(
            f"unknown stabilization {stabilization!r}; choose one of {list(STABILIZATIONS)}"
        )
    if balanced and (s_i is not None or leak is not None):
        raise ValueError(
            "ei_integrate: balanced currents cannot take s_i or leak (spiking I units)"
        )
    fusable = s_i is None and leak is None and fused_supported(readout, stabilization, ste)
    tier = select_tier(fusable, kernel_ready=True)
    if tier == "eager" and balanced:
        return ei_integrate_balanced(
            currents,
            n_excitatory,
            w_ei,
            g_i,
            g_e,
            b_e,
            readout=readout,
            stabilization=stabilization,
            epsilon=epsilon,
            ste=ste,
        )
    if tier == "eager":
        i_ee, i_i = split_currents(currents, n_excitatory)
        return ei_integrate_eager(
            i_ee,
            i_i if s_i is None else s_i,
            w_ei,
            g_i,
            g_e,
            b_e,
            leak=leak,
            readout=readout,
            stabilization=stabilization,
            epsilon=epsilon,
            ste=ste,
        )
    return ei_integrate_fused(
        currents,
        n_excitatory,
        w_ei,
        g_i,
        g_e,
        b_e,
        stabilization=stabilization,
        epsilon=epsilon,
        kernel=tier == "kernel",
        balanced=balanced,
    )


def lif_multistep(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
) -> torch.Tensor:
    """Spikes ``[T, ...]`` of the multi-step LIF (``lif``) for input currents ``[T, ...]``."""
    surrogate_derivative(surrogate)  # validates the name before any work
    tier = select_tier(fusable=True, kernel_ready=surrogate in cpu_kernels.SURROGATE_CODES)
    if tier == "eager":
        return lif_multistep_eager(x, tau, v_threshold, surrogate, alpha)
    return lif_multistep_fused(x, tau, v_threshold, surrogate, alpha, kernel=tier == "kernel")
