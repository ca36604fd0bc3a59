"""The precision policy of E-I layers under autocast (bf16 or fp16).

E-I Init makes ``I_EE`` and ``W_EI I_I`` nearly equal, so ``I_EE - W_EI I_I`` cancels: computed
from convolution outputs rounded to bf16 (8-bit mantissa), the rounding of ``I_EE`` and ``I_I``
is amplified by ``|I_EE| / |I_EE - sub|`` (4 to 28 in VGG-8), and a layer's output is off by
1e-2 to 7e-2 (docs/performance.md, ``benchmarks/precision.py``). The policy removes the
cancellation from the rounded values instead of computing it in higher precision:

- the subtraction is folded into the weight, in float32 and outside autocast:
  ``W_fold = W_EE - W_EI W_IE`` (exact maths: the map is linear, ``map(x, W_EE) - W_EI
  map(x, W_IE) = map(x, W_fold)``), so the layer's one convolution in the autocast dtype
  produces ``[a; I_I]`` with ``a = I_EE - sub`` directly, rounded once relative to ``a`` itself;
- the rest of the node (``div = (W_EI diag g_I) I_I``, the stabilization, the division, the
  gain and the bias) runs in float32, and so returns float32 (float64 stays float64): the fused
  operation's balanced mode (``tiers.ei_integrate(..., balanced=True)``, ``ei_fused``), whose
  eager tier and reference is :func:`ei_integrate_balanced`.

Against the unfolded node, the forward has one lateral product less and the backward two less
(``3 n_E n_I N P`` multiply-adds for ``N`` samples of ``P`` positions), for the fold's
``[n_E, n_I] x [n_I, fan_in]`` product of weights and its backward (``3 n_E n_I fan_in``).
Spiking I units (whose output is not ``I_I``) cannot be folded; their layers compute the node in
float32 after the unfolded convolution.
"""

from __future__ import annotations

import torch

from .ei import mix_channels, per_channel, split_currents, stabilize


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or unchanged when it is already float32 or wider (float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def autocast_active(x: torch.Tensor) -> bool:
    """True when autocast is on for ``x``'s device type (the precision policy applies)."""
    return torch.is_autocast_enabled(x.device.type)


def folded_weight(w_ee: torch.Tensor, w_ie: torch.Tensor, w_ei: torch.Tensor) -> torch.Tensor:
    """``[W_EE - W_EI W_IE; W_IE]`` in float32 (or float64), computed outside autocast: the
    stacked weight whose map gives ``[I_EE - W_EI I_I; I_I]``. ``w_ee [n_E, ...]``,
    ``w_ie [n_I, ...]`` (conv or linear weights), ``w_ei [n_E, n_I]``."""
    with torch.autocast(w_ee.device.type, enabled=False):
        w_ee, w_ie, w_ei = (at_least_float32(w) for w in (w_ee, w_ie, w_ei))
        inhibited = (w_ei @ w_ie.flatten(1)).view_as(w_ee)
        return torch.cat([w_ee - inhibited, w_ie], dim=0)


def ei_integrate_balanced(
    currents: torch.Tensor,
    n_excitatory: int,
    w_ei: torch.Tensor,
    g_i: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    *,
    s_i: torch.Tensor | None = None,
    balanced: bool = True,
    readout: bool = False,
    stabilization: str = "adaptive",
    epsilon: float = 1e-8,
    ste: bool = True,
    leak: torch.Tensor | None = None,
) -> torch.Tensor:
    """The E-I integration in float32 (or float64 for float64 input) outside autocast,
    differentiated by autograd (the eager tier of the balanced mode); returns ``[N, n_E, ...]``
    in that dtype.

    ``currents``: ``[a; I_I]`` with ``a = I_EE - W_EI I_I`` already subtracted (the map of
    :func:`folded_weight`), or with ``balanced=False`` the plain ``[I_EE; I_I]`` (the
    subtraction ``I_EE - W_EI s_I`` then runs here, in float32). ``s_i``: the I units' output
    when it is not ``I_I`` (spiking I units; needs ``balanced=False``); ``leak``: their ``g_L``.
    Then ``div = W_EI (g_I s_I)`` and ``g_E a / q + b_E`` with ``q = stabilize(div)`` (or
    ``g_L + div``); a readout returns ``a``.
    """
    if balanced and s_i is not None:
        raise ValueError(
            "ei_integrate_balanced: s_i needs balanced=False (spikes cannot be folded)"
        )
    with torch.autocast(currents.device.type, enabled=False):
        first, i_i = split_currents(at_least_float32(currents), n_excitatory)
        s_i = i_i if s_i is None else at_least_float32(s_i)
        w_ei, g_i, g_e, b_e = (at_least_float32(p) for p in (w_ei, g_i, g_e, b_e))
        a = first if balanced else first - mix_channels(w_ei, s_i)
        if readout:
            return a
        div = mix_channels(w_ei, per_channel(g_i, s_i) * s_i)
        q = stabilize(div, stabilization, epsilon, ste) if leak is None else div + leak
        return per_channel(g_e, a) * a / q + per_channel(b_e, a)
