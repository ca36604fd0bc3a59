"""E-I integration: lateral inhibition that replaces normalization (SPEC sections 1-2).

One layer's input map produces the excitatory drive ``I_EE`` and the input ``I_I`` of the
inhibitory units, stacked as ``[I_EE; I_I]`` by one convolution (or linear map) with the stacked
weight ``[W_EE; W_IE]``. The I units' output ``s_I`` is ``I_I`` itself (the paper's fast-spiking
ReLU units, which are the identity on non-negative currents) or the spikes of spiking I units.
Per position::

    sub   = W_EI @ s_I                      # subtractive inhibition
    div   = W_EI @ (g_I * s_I)              # divisive (shunting) inhibition
    I_int = g_E * (I_EE - sub) / q + b_E    # q = stabilize(div), or g_L + div with a leak

``W_EI @`` mixes channels (dim 1) at every position, like a 1x1 convolution. A readout layer
returns ``I_EE - sub`` only. This module holds each of these equations once, and the eager
reference of the whole integration (differentiated by autograd); ``ei_fused`` computes the same
maths as one autograd node, and ``tiers`` chooses between them. Everything is branch-free tensor
code (no host synchronization).
"""

from __future__ import annotations

import torch

STABILIZATIONS: tuple[str, ...] = ("adaptive", "epsilon", "none")


class _DivideGrad(torch.autograd.Function):
    """Identity forward; the backward divides the incoming gradient by ``divisor``."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, divisor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.divisor = divisor
        return w.view_as(w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad / ctx.divisor, None


def divide_grad(w: torch.Tensor, divisor: float) -> torch.Tensor:
    """``w`` unchanged; its gradient becomes ``grad / divisor`` (the W_EI gradient scaling,
    ``1/d``)."""
    return _DivideGrad.apply(w, divisor)


def per_channel(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a per-channel vector so that it broadcasts over ``like``'s channel dim 1."""
    return p.view(1, -1, *([1] * (like.dim() - 2)))


def stack_weights(w_ee: torch.Tensor, w_ie: torch.Tensor) -> torch.Tensor:
    """``[W_EE; W_IE]``: one weight whose map gives the stacked currents ``[I_EE; I_I]``."""
    return torch.cat([w_ee, w_ie], dim=0)


def split_currents(currents: torch.Tensor, n_excitatory: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(I_EE, I_I)``: the channels of the stacked currents before and after ``n_excitatory``."""
    return currents[:, :n_excitatory], currents[:, n_excitatory:]


def mix_channels(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(W @ x)`` over the channel dim 1 at every position: ``[N, n_I, ...] -> [N, n_E, ...]``."""
    if x.dim() == 2:
        return x @ w.t()
    return torch.einsum("ei,ni...->ne...", w, x)


def lateral_inhibition(
    w_ei: torch.Tensor, g_i: torch.Tensor, s_i: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sub, div) = (W_EI @ s_I, W_EI @ (g_I * s_I))``, ``div`` before stabilization."""
    return mix_channels(w_ei, s_i), mix_channels(w_ei, per_channel(g_i, s_i) * s_i)


def stabilize_(
    div: torch.Tensor, mode: str, epsilon: float, row_min: torch.Tensor | None = None
) -> torch.Tensor | None:
    """In place: ``div [N, ...]`` becomes the stabilized denominator. Returns the row minima
    ``[N, 1, ...]`` of the adaptive mode (computed unless given), else ``None``.

    ``adaptive`` (the paper): every zero becomes the smallest positive entry of its row (one
    sample of the merged ``[T*B]`` dim), ``+inf`` for a row without any. ``epsilon``: ``div + eps``.
    ``none``: unchanged. Float arithmetic only (boolean masks are slow on CPU): ``z = (div == 0)``
    as 0/1; the minimum of ``div + BIG z`` (``BIG`` the largest finite value; adding 0 or
    subtracting back ``BIG`` is exact) is the smallest non-zero entry, ``BIG`` meaning none (then
    ``+inf``); ``div + z * row_min`` puts it where the zeros are (exact: a non-zero entry gains
    ``0 * row_min = 0``, and a row with ``row_min = inf`` has only zeros).
    """
    if mode not in STABILIZATIONS:
        raise ValueError(f"unknown stabilization {mode!r}; choose one of {list(STABILIZATIONS)}")
    if mode == "adaptive":
        is_zero = torch.eq(div, 0, out=torch.empty_like(div))
        if row_min is None:
            big = torch.finfo(div.dtype).max
            rows = div.add_(is_zero, alpha=big).reshape(div.shape[0], -1).amin(dim=1)
            div.sub_(is_zero, alpha=big)
            row_min = torch.where(rows == big, float("inf"), rows).view(-1, *[1] * (div.dim() - 1))
        div.addcmul_(is_zero, row_min)
    elif mode == "epsilon":
        div.add_(epsilon)
    return row_min


def stabilize(
    div: torch.Tensor, mode: str = "adaptive", epsilon: float = 1e-8, ste: bool = True
) -> torch.Tensor:
    """The denominator actually used (``stabilize_``), differentiable.

    With ``ste`` the adaptive replacement is invisible to the backward pass (straight-through:
    the gradient reaches ``div`` as if nothing was replaced); without it the gradient follows
    the replacement (to the row minimum), as in the paper's ablation.
    """
    if mode == "adaptive" and not ste:
        is_zero = div == 0
        masked = torch.where(is_zero, torch.full_like(div, float("inf")), div)
        row_min = masked.reshape(div.shape[0], -1).amin(dim=1).view(-1, *[1] * (div.dim() - 1))
        return torch.where(is_zero, row_min, div)
    stabilized = div.detach().clone(memory_format=torch.contiguous_format)  # `out=` needs this
    stabilize_(stabilized, mode, epsilon)
    return stabilized + (div - div.detach())


def ei_integrate_eager(
    i_ee: torch.Tensor,
    s_i: torch.Tensor,
    w_ei: torch.Tensor,
    g_i: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    *,
    leak: torch.Tensor | float | None = None,
    readout: bool = False,
    stabilization: str = "adaptive",
    epsilon: float = 1e-8,
    ste: bool = True,
) -> torch.Tensor:
    """Reference E-I integration, differentiated by autograd.

    Shapes: ``i_ee [N, n_E, ...]``, ``s_i [N, n_I, ...]`` (``I_I``, or spikes of spiking I
    units), ``w_ei [n_E, n_I]``, ``g_i [n_I]``, ``g_e [n_E]``, ``b_e [n_E]``. Returns
    ``[N, n_E, ...]``. With a leak conductance ``g_L`` the denominator is ``g_L + div``
    (no stabilization: ``g_L > 0`` keeps it positive).
    """
    sub, div = lateral_inhibition(w_ei, g_i, s_i)
    balanced = i_ee - sub
    if readout:
        return balanced
    q = stabilize(div, stabilization, epsilon, ste) if leak is None else div + leak
    return per_channel(g_e, balanced) * balanced / q + per_channel(b_e, balanced)
