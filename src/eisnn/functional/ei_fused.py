"""Fused E-I integration: the maths of ``ei.ei_integrate_eager`` as one autograd node.

The layer's input map produces the stacked currents ``[I_EE; I_I]`` (``[N, n_E + n_I, ...]``)
in one convolution. From them, per position::

    [sub; div] = [W_EI; W_EI diag(g_I)] @ I_I      # both I->E products in one matrix product
    I_int      = g_E * (I_EE - sub) / stabilize(div) + b_E

The forward works in place in the buffer of that product and saves only the stacked currents
(which the layer computed anyway) and one row minimum per sample; the backward recomputes the
product and derives every gradient from it, reusing its buffer:

    G_q   = G / q                      (q = stabilize(div), G = dL/dI_int)
    dI_EE = g_E * G_q = -d sub,   d div = -g_E * G_q * (I_EE - sub) / q   (straight-through)
    dg_E  = sum G_q * (I_EE - sub),   db_E = sum G

Adaptive stabilization without host synchronization: zeros of ``div`` become ``+inf``, the row
minimum is taken and put where the zeros were. The readout (``I_EE - sub``) and the adaptive mode without the
straight-through estimator use the eager reference.
"""

from __future__ import annotations

import torch

from .ei import STABILIZATIONS, ei_integrate_eager


def _mix(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``W @ x`` at every position for ``x [N, n_I, P]``: ``[N, rows(W), P]``."""
    if x.shape[2] == 1:
        return (x[:, :, 0] @ w.t()).unsqueeze(2)
    return torch.matmul(w, x)


def _mix_backward(w: torch.Tensor, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``_mix(w, x)`` given ``grad [N, rows(W), P]``: ``(d x, d w)``."""
    if x.shape[2] == 1:
        g2 = grad[:, :, 0]
        return (g2 @ w).unsqueeze(2), g2.t() @ x[:, :, 0]
    return torch.matmul(w.t(), grad), torch.matmul(grad, x.transpose(1, 2)).sum(0)


def _stabilize_(div: torch.Tensor, mode: str, epsilon: float, row_min: torch.Tensor | None = None) -> torch.Tensor | None:
    """In place: ``div [N, n_E, P]`` becomes the stabilized denominator. Returns the row minima
    ``[N, 1, 1]`` of the adaptive mode (computed unless given), else ``None``."""
    if mode == "adaptive":
        is_zero = div == 0
        if row_min is None:
            row_min = div.masked_fill_(is_zero, float("inf")).amin(dim=(1, 2), keepdim=True)
        torch.where(is_zero, row_min, div, out=div)
    elif mode == "epsilon":
        div.add_(epsilon)
    return row_min


class _EIIntegrate(torch.autograd.Function):
    """``g_E * (I_EE - sub) / q + b_E`` from the stacked currents, saving the currents only."""

    @staticmethod
    def forward(ctx, currents, w_mix, g_e, b_e, n_excitatory: int, mode: str, epsilon: float):  # type: ignore[override]
        shape = currents.shape
        c3 = currents.reshape(shape[0], shape[1], -1)
        i_ee, i_i = c3[:, :n_excitatory], c3[:, n_excitatory:]
        mixed = _mix(w_mix.to(c3.dtype), i_i)
        sub, div = mixed[:, :n_excitatory], mixed[:, n_excitatory:]
        row_min = _stabilize_(div, mode, epsilon)
        balanced = torch.sub(i_ee, sub, out=sub)
        balanced.mul_(g_e.view(1, -1, 1))
        out = torch.addcdiv(b_e.view(1, -1, 1), balanced, div)
        ctx.save_for_backward(currents, w_mix, g_e, row_min)
        ctx.n_excitatory, ctx.mode, ctx.epsilon = n_excitatory, mode, epsilon
        return out.view(shape[0], n_excitatory, *shape[2:])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        currents, w_mix, g_e, row_min = ctx.saved_tensors
        n_e = ctx.n_excitatory
        shape = currents.shape
        c3 = currents.reshape(shape[0], shape[1], -1)
        i_ee, i_i = c3[:, :n_e], c3[:, n_e:]
        w = w_mix.to(c3.dtype)
        mixed = _mix(w, i_i)
        sub, div = mixed[:, :n_e], mixed[:, n_e:]
        _stabilize_(div, ctx.mode, ctx.epsilon, row_min)
        balanced = torch.sub(i_ee, sub, out=sub)
        g = g_e.view(1, -1, 1).to(c3.dtype)
        grad = grad_out.reshape(shape[0], n_e, -1)
        grad_currents = torch.empty_like(c3)
        grad_ee = grad_currents[:, :n_e]
        torch.div(grad, div, out=grad_ee)  # G / q
        product = balanced.mul_(grad_ee)  # G/q * (I_EE - sub)
        grad_g_e = product.sum(dim=(0, 2))
        product.mul_(-g)
        torch.div(product, div, out=div)  # d div
        grad_ee.mul_(g)  # d I_EE
        torch.neg(grad_ee, out=sub)  # d sub
        grad_i, grad_w = _mix_backward(w, i_i, mixed)
        grad_currents[:, n_e:] = grad_i
        grad_b_e = grad.sum(dim=(0, 2))
        return (
            grad_currents.view(shape),
            grad_w.to(w_mix.dtype),
            grad_g_e.to(g_e.dtype),
            grad_b_e.to(g_e.dtype),
            None,
            None,
            None,
        )


def fused_supported(readout: bool, stabilization: str, ste: bool) -> bool:
    """Whether the fused path computes this configuration (else the eager reference runs)."""
    return not readout and (ste or stabilization != "adaptive")


def ei_integrate_currents(
    currents: torch.Tensor,
    n_excitatory: int,
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
    """``ei_integrate`` of the stacked currents ``[I_EE; I_I]`` (split after ``n_excitatory`` channels)."""
    if stabilization not in STABILIZATIONS:
        raise ValueError(f"unknown stabilization {stabilization!r}; choose one of {list(STABILIZATIONS)}")
    if not fused_supported(readout, stabilization, ste):
        i_ee, i_i = currents[:, :n_excitatory], currents[:, n_excitatory:]
        return ei_integrate_eager(
            i_ee, i_i, w_ei, g_i, g_e, b_e, readout=readout, stabilization=stabilization, epsilon=epsilon, ste=ste
        )
    w_mix = torch.cat([w_ei, w_ei * g_i.view(1, -1)])
    return _EIIntegrate.apply(currents, w_mix, g_e, b_e, n_excitatory, stabilization, epsilon)


def ei_integrate_fused(
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
    """Same signature and result as ``ei_integrate_eager`` (to float rounding), through the fused node.

    Separate ``I_EE`` and ``I_I`` are stacked first; layers that compute them with one map call
    ``ei_integrate_currents`` directly.
    """
    options = {"readout": readout, "stabilization": stabilization, "epsilon": epsilon, "ste": ste}
    if not fused_supported(readout, stabilization, ste):
        return ei_integrate_eager(i_ee, i_i, w_ei, g_i, g_e, b_e, **options)
    return ei_integrate_currents(torch.cat([i_ee, i_i], dim=1), i_ee.shape[1], w_ei, g_i, g_e, b_e, **options)
