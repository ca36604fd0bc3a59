"""E-I integration: lateral inhibition that replaces normalization (SPEC sections 1-2).

Given the excitatory drive ``I_EE`` and the inhibitory units' input ``I_I`` (both computed by
the layer's input convolution/linear map), per position::

    sub   = W_EI @ I_I                      # subtractive inhibition
    div   = W_EI @ (g_I * I_I)              # divisive (shunting) inhibition
    I_int = g_E * (I_EE - sub) / stabilize(div) + b_E

``W_EI @`` mixes channels (dim 1) at every position, like a 1x1 convolution. A readout
layer returns ``I_EE - sub`` only. Everything here is branch-free tensor code (no host sync).
"""

from __future__ import annotations

from typing import Literal

import torch

Stabilization = Literal["adaptive", "epsilon", "none"]
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
    """``w`` unchanged; its gradient becomes ``grad / divisor`` (the W_EI gradient scaling, ``1/d``)."""
    return _DivideGrad.apply(w, divisor)


def mix_channels(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(W @ x)`` over the channel dim 1 at every position: ``[N, n_I, ...] -> [N, n_E, ...]``."""
    if x.dim() == 2:
        return x @ w.t()
    return torch.einsum("ei,ni...->ne...", w, x)


def adaptive_stabilize(div: torch.Tensor, ste: bool = True) -> torch.Tensor:
    """Replace every zero of ``div`` by the smallest positive entry of its row (``dim 0``).

    A row without positive entries gets ``+inf``. With ``ste`` the replacement is invisible to
    the backward pass (straight-through: the gradient reaches ``div`` as if nothing was replaced);
    without it the gradient follows the replacement (to the row minimum).
    """
    is_zero = div == 0
    rows = div.shape[0]
    masked = torch.where(is_zero, torch.full_like(div, float("inf")), div)
    row_min = masked.reshape(rows, -1).amin(dim=1).view(rows, *([1] * (div.dim() - 1)))
    replaced = torch.where(is_zero, row_min, div)
    if ste:
        return replaced.detach() + (div - div.detach())
    return replaced


def stabilize(div: torch.Tensor, mode: str = "adaptive", epsilon: float = 1e-8, ste: bool = True) -> torch.Tensor:
    """The denominator actually used: ``adaptive`` (the paper), ``epsilon`` (``div + eps``) or ``none``."""
    if mode == "adaptive":
        return adaptive_stabilize(div, ste)
    if mode == "epsilon":
        return div + epsilon
    if mode == "none":
        return div
    raise ValueError(f"unknown stabilization {mode!r}; choose one of {list(STABILIZATIONS)}")


def _per_channel(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a per-channel vector so that it broadcasts over ``like``'s channel dim 1."""
    return p.view(1, -1, *([1] * (like.dim() - 2)))


def ei_integrate_eager(
    i_ee: torch.Tensor,
    i_i: torch.Tensor,
    w_ei: torch.Tensor,
    g_i: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    *,
    readout: bool = False,
    stabilization: str = "adaptive",
    epsilon: float = 1e-8,
    ste: bool = True,
) -> torch.Tensor:
    """Reference E-I integration, differentiated by autograd.

    Shapes: ``i_ee [N, n_E, ...]``, ``i_i [N, n_I, ...]``, ``w_ei [n_E, n_I]``,
    ``g_i [n_I]``, ``g_e [n_E]``, ``b_e [n_E]``. Returns ``[N, n_E, ...]``.
    """
    balanced = i_ee - mix_channels(w_ei, i_i)
    if readout:
        return balanced
    div = mix_channels(w_ei, _per_channel(g_i, i_i) * i_i)
    div = stabilize(div, stabilization, epsilon, ste)
    return _per_channel(g_e, balanced) * balanced / div + _per_channel(b_e, balanced)
