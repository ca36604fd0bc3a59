"""Fused E-I integration: the maths of ``ei.ei_integrate_eager`` as one autograd node.

The layer's input map produces the stacked currents ``[I_EE; I_I]`` (``[N, n_E + n_I, ...]``)
in one convolution. From them, per position::

    sub   = W_EI @ I_I,   div = (W_EI diag(g_I)) @ I_I
    I_int = g_E * (I_EE - sub) / stabilize(div) + b_E

The forward saves the balanced current ``a = I_EE - sub`` (in the buffer of ``sub``), a copy of
``I_I`` and one row minimum per sample: as much memory as the stacked currents, which are then
freed. The backward recomputes ``div`` only and derives every gradient from it, reusing its
buffer. The element-wise part is one pass of a C kernel on float32 CPU tensors
(``cpu_kernels``), else PyTorch ops that round the same way:

    G_q   = G / q                      (q = stabilize(div), G = dL/dI_int)
    dI_EE = g_E * G_q = -d sub,   d div = -g_E * G_q * (I_EE - sub) / q   (straight-through)
    dg_E  = sum G_q * (I_EE - sub),   db_E = sum G

Adaptive stabilization without host synchronization or boolean masks (see ``_stabilize_``).
The readout (``I_EE - sub``) and the adaptive mode without the
straight-through estimator use the eager reference.
"""

from __future__ import annotations

import torch

from . import cpu_kernels
from .ei import STABILIZATIONS, ei_integrate_eager
from .first_order import first_order_only


FLAT_POSITIONS = 4  # up to this many positions per sample, one product over all (sample, position)
# pairs beats N products only that many columns wide (2.3x on [512, 128] x [128, 128 * 4], 2 threads)


def _mix(w: torch.Tensor, x: torch.Tensor, accumulate: torch.Tensor | None = None) -> torch.Tensor:
    """``W @ x`` at every position for ``x [N, n_I, P]`` as a fresh contiguous ``[N, rows(W), P]``
    (one batched product, no layout copies; with few positions one flat product); or, given
    ``accumulate``, added to it in place."""
    n, k, positions = x.shape
    if positions == 1:
        if accumulate is None:
            return (x[:, :, 0] @ w.t()).unsqueeze(2)
        accumulate[:, :, 0].addmm_(x[:, :, 0], w.t())
        return accumulate
    if positions <= FLAT_POSITIONS:
        flat = (w @ x.transpose(0, 1).reshape(k, n * positions)).view(w.shape[0], n, positions).transpose(0, 1)
        return flat.contiguous() if accumulate is None else accumulate.add_(flat)
    batched = w.expand(n, *w.shape)
    return torch.bmm(batched, x) if accumulate is None else accumulate.baddbmm_(batched, x)


def _mix_weight_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient of ``_mix(w, x)`` with respect to ``w``, given ``grad [N, rows(W), P]``."""
    if x.shape[2] == 1:
        return grad[:, :, 0].t() @ x[:, :, 0]
    if x.shape[2] < x.shape[1]:  # few positions: one product over (N, P) beats N small ones and their sum
        return torch.einsum("nep,nip->ei", grad, x)
    return torch.bmm(grad, x.transpose(1, 2)).sum(0)


def _stabilize_(div: torch.Tensor, mode: str, epsilon: float, row_min: torch.Tensor | None = None) -> torch.Tensor | None:
    """In place: ``div [N, n_E, P]`` becomes the stabilized denominator. Returns the row minima
    ``[N, 1, 1]`` of the adaptive mode (computed unless given), else ``None``.

    Adaptive, with float arithmetic only (boolean masks are slow on CPU): ``z = (div == 0)`` as
    0/1; the minimum of ``div + BIG z`` (``BIG`` the largest finite value, adding 0 or
    subtracting back ``BIG`` is exact) is the smallest non-zero entry, ``BIG`` meaning none
    (then ``+inf``); ``div + z * row_min`` puts it where the zeros are (exact: a non-zero entry
    gains ``0 * row_min = 0``, and a row with ``row_min = inf`` has only zeros).
    """
    if mode == "adaptive":
        is_zero = torch.eq(div, 0, out=torch.empty_like(div))
        if row_min is None:
            big = torch.finfo(div.dtype).max
            row_min = div.add_(is_zero, alpha=big).amin(dim=(1, 2), keepdim=True)
            div.sub_(is_zero, alpha=big)
            row_min = torch.where(row_min == big, float("inf"), row_min)
        div.addcmul_(is_zero, row_min)
    elif mode == "epsilon":
        div.add_(epsilon)
    return row_min


class _EIIntegrate(torch.autograd.Function):
    """``g_E * (I_EE - sub) / q + b_E`` from the stacked currents, saving ``a = I_EE - sub`` and ``I_I``."""

    @staticmethod
    def forward(ctx, currents, w_ei, w_gi, g_e, b_e, n_excitatory: int, mode: str, epsilon: float):  # type: ignore[override]
        shape = currents.shape
        c3 = currents.reshape(shape[0], shape[1], -1)
        dtype = c3.dtype
        i_ee, i_i = c3[:, :n_excitatory], c3[:, n_excitatory:].clone(memory_format=torch.contiguous_format)  # frees the currents
        sub, div = _mix(w_ei.to(dtype), i_i), _mix(w_gi.to(dtype), i_i)
        g, b = g_e.to(dtype), b_e.to(dtype)
        ctx.kernel = cpu_kernels.usable(c3)  # contiguous float32 [N, C, P] on the CPU
        if ctx.kernel:
            out, row_min = cpu_kernels.ei_forward(i_ee, sub, div, g, b, mode, epsilon)
        else:
            row_min = _stabilize_(div, mode, epsilon)
            out = torch.mul(torch.sub(i_ee, sub, out=sub), g.view(1, -1, 1))
            torch.addcdiv(b.view(1, -1, 1), out, div, out=out)
        ctx.save_for_backward(sub, i_i, w_ei, w_gi, g_e, row_min)
        ctx.shape, ctx.mode, ctx.epsilon = shape, mode, epsilon
        return out.view(shape[0], n_excitatory, *shape[2:])

    @staticmethod
    @first_order_only("ei_integrate_eager")
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        a, i_i, w_ei, w_gi, g_e, row_min = ctx.saved_tensors
        shape, mode = ctx.shape, ctx.mode
        n_e = a.shape[1]
        w_ei_c, w_gi_c, g = w_ei.to(a.dtype), w_gi.to(a.dtype), g_e.to(a.dtype)
        div = _mix(w_gi_c, i_i)
        grad = grad_out.reshape(a.shape)
        grad_currents = a.new_empty(shape[0], shape[1], a.shape[2])
        grad_ee = grad_currents[:, :n_e]
        if ctx.kernel:
            grad_g_e, grad_b_e = cpu_kernels.ei_backward(grad.contiguous().to(a.dtype), a, div, grad_ee, g, row_min, mode, ctx.epsilon)
        else:
            _stabilize_(div, mode, ctx.epsilon, row_min)
            grad_ee.copy_(grad).div_(div)  # G / q
            product = torch.mul(a, grad_ee)  # G/q * (I_EE - sub)
            grad_g_e, grad_b_e = product.sum(dim=(0, 2)), grad.sum(dim=(0, 2))
            torch.div(product.mul_(g.view(1, -1, 1)), div, out=div)
            grad_ee.mul_(g.view(1, -1, 1))  # dI_EE = -d sub
        minus_grad_div = div  # g G (I_EE - sub) / q^2 = -dL/d div (straight-through)
        grad_currents[:, n_e:] = _mix(-w_gi_c.t(), minus_grad_div, accumulate=_mix(-w_ei_c.t(), grad_ee))
        return (
            grad_currents.view(shape),
            (-_mix_weight_grad(i_i, grad_ee)).to(w_ei.dtype),
            (-_mix_weight_grad(i_i, minus_grad_div)).to(w_gi.dtype),
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
    return _EIIntegrate.apply(currents, w_ei, w_ei * g_i.view(1, -1), g_e, b_e, n_excitatory, stabilization, epsilon)


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
