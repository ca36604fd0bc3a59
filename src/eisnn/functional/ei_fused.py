"""Fused E-I integration: the maths of ``ei.ei_integrate_eager`` as one custom operation with a
hand-written backward (``eisnn::ei_fused_forward``, its autograd ``eisnn::ei_fused_backward``).

The layer's input map produces the stacked currents ``[I_EE; I_I]`` (``[N, n_E + n_I, ...]``)
in one convolution. From them, per position::

    sub   = W_EI @ I_I,   div = (W_EI diag(g_I)) @ I_I
    I_int = g_E * (I_EE - sub) / stabilize(div) + b_E

The forward saves the balanced current ``a = I_EE - sub`` (in the buffer of ``sub``), a copy of
``I_I`` and one row minimum per sample: as much memory as the stacked currents, which are then
freed. The backward recomputes ``div`` only and derives every gradient from it, reusing its
buffer. The element-wise part is one pass of the device's kernels (``devices.device_kernels``:
C on CPU, Triton on CUDA, float32), else PyTorch ops that round the same way:

    G_q   = G / q                      (q = stabilize(div), G = dL/dI_int)
    dI_EE = g_E * G_q = -d sub,   d div = -g_E * G_q * (I_EE - sub) / q   (straight-through)
    dg_E  = sum G_q * (I_EE - sub),   db_E = sum G

The balanced mode (``balanced=True``, the precision policy under autocast) takes the folded
weight's currents ``[a; I_I]`` (``a = I_EE - sub`` already, ``precision.folded_weight``) in any
dtype and computes in at least float32: no ``sub``; it saves the currents themselves (in bf16
under autocast: half the bytes of ``a`` and ``I_I`` in float32) and upcasts them again in the
backward, which gives ``d a = g_E G_q``, ``dI_I`` through ``div`` only, and no ``W_EI`` gradient
(the subtractive path's flows through the folded weight, outside the operation).

The stabilization is ``ei.stabilize_`` (no host synchronization, no boolean masks). The
operation computes hidden layers with the paper's ReLU I units and a straight-through (or no)
replacement; ``tiers`` sends every other configuration to the eager reference. Being custom
operations with fake (shape-only) implementations, ``torch.compile(fullgraph=True)`` and
``torch.export`` keep them as single nodes of their graphs.
"""

from __future__ import annotations

import math

import torch

from .devices import device_kernels
from .ei import split_currents, stabilize_
from .first_order import first_order_only
from .tuning import FLAT_POSITIONS


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
        flat = (
            (w @ x.transpose(0, 1).reshape(k, n * positions))
            .view(w.shape[0], n, positions)
            .transpose(0, 1)
        )
        return flat.contiguous() if accumulate is None else accumulate.add_(flat)
    batched = w.expand(n, *w.shape)
    return torch.bmm(batched, x) if accumulate is None else accumulate.baddbmm_(batched, x)


def _mix_weight_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient of ``_mix(w, x)`` with respect to ``w``, given ``grad [N, rows(W), P]``."""
    if x.shape[2] == 1:
        return grad[:, :, 0].t() @ x[:, :, 0]
    if (
        x.shape[2] < x.shape[1]
    ):  # few positions: one product over (N, P) beats N small ones and their sum
        return torch.einsum("nep,nip->ei", grad, x)
    return torch.bmm(grad, x.transpose(1, 2)).sum(0)


def _node_dtype(dtype: torch.dtype, balanced: bool) -> torch.dtype:
    """The dtype the node computes and returns in: the currents' own, or at least float32 in the
    balanced mode (the precision policy's node: bf16 or fp16 currents upcast, float64 kept)."""
    return torch.promote_types(dtype, torch.float32) if balanced else dtype


def _upcast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` as a contiguous ``dtype`` tensor (itself when it already is one; only read)."""
    return t.to(dtype).contiguous()  # (``to`` ignores ``memory_format`` when the dtype matches)


@torch.library.custom_op("eisnn::ei_fused_forward", mutates_args=())
def ei_fused_forward(
    currents: torch.Tensor,
    w_ei: torch.Tensor,
    w_gi: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    n_excitatory: int,
    mode: str,
    epsilon: float,
    kernel: bool,
    balanced: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(I_int, a, I_I, row_min)`` of the stacked currents ``[N, n_E + n_I, ...]``: the output
    ``g_E a / q + b_E`` (``a = I_EE - sub``) and the state its backward needs: ``a``, a copy of
    ``I_I`` (both ``[N, -1, P]``) and the adaptive mode's row minima ``[N, 1, 1]`` (zeros in the
    other modes). The element-wise pass runs in ``devices.device_kernels`` when ``kernel``.

    ``balanced``: the currents are ``[a; I_I]`` with ``a`` already subtracted (the folded weight's
    map, ``precision.folded_weight``); the node upcasts them and computes in at least float32
    (``sub`` is not formed), and returns empty ``a`` and ``I_I``: its backward reads the currents
    themselves, in their own (narrower) dtype."""
    shape = currents.shape
    c3 = currents.reshape(shape[0], shape[1], -1)
    dtype = _node_dtype(c3.dtype, balanced)
    with torch.autocast(c3.device.type, enabled=False):  # the products in ``dtype``
        i_ee, i_i = split_currents(c3, n_excitatory)
        if balanced:
            a, i_i = _upcast(i_ee, dtype), _upcast(i_i, dtype)
        else:
            i_i = i_i.clone(memory_format=torch.contiguous_format)  # the currents can be freed
            a = _mix(w_ei.to(dtype), i_i)  # sub, overwritten with a = I_EE - sub
        div = _mix(w_gi.to(dtype), i_i)
        g, b = g_e.to(dtype), b_e.to(dtype)
        kernels = device_kernels(a if balanced else c3, kernel)
        if kernels is not None:
            out, row_min = kernels.ei_forward(
                None if balanced else i_ee, a, div, g, b, mode, epsilon
            )
        else:
            row_min = stabilize_(div, mode, epsilon)
            if row_min is None:
                row_min = a.new_zeros(shape[0], 1, 1)
            if not balanced:
                torch.sub(i_ee, a, out=a)
            out = torch.mul(a, g.view(1, -1, 1))
            torch.addcdiv(b.view(1, -1, 1), out, div, out=out)
    out = out.view(shape[0], n_excitatory, *shape[2:])
    if balanced:
        return out, c3.new_empty(0), c3.new_empty(0), row_min
    return out, a, i_i, row_min


@ei_fused_forward.register_fake
def _ei_fused_forward_fake(
    currents, w_ei, w_gi, g_e, b_e, n_excitatory, mode, epsilon, kernel, balanced
):
    """Shapes and dtypes of ``ei_fused_forward``'s outputs."""
    n, channels, positions = currents.shape[0], currents.shape[1], math.prod(currents.shape[2:])
    dtype = _node_dtype(currents.dtype, balanced)
    out = currents.new_empty(n, n_excitatory, *currents.shape[2:], dtype=dtype)
    row_min = currents.new_empty(n, 1, 1, dtype=dtype)
    if balanced:
        return out, currents.new_empty(0), currents.new_empty(0), row_min
    return (
        out,
        currents.new_empty(n, n_excitatory, positions),
        currents.new_empty(n, channels - n_excitatory, positions),
        row_min,
    )


@torch.library.custom_op("eisnn::ei_fused_backward", mutates_args=())
def ei_fused_backward(
    grad_out: torch.Tensor,
    a: torch.Tensor,
    i_i: torch.Tensor,
    w_ei: torch.Tensor,
    w_gi: torch.Tensor,
    g_e: torch.Tensor,
    row_min: torch.Tensor,
    mode: str,
    epsilon: float,
    kernel: bool,
    balanced: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(d currents [N, n_E + n_I, P], d W_EI, d W_GI, d g_E, d b_E)`` from ``G =
    dL/dI_int`` and the state ``ei_fused_forward`` saved; ``div`` is recomputed.

    ``balanced``: ``a`` and ``I_I`` are the channel slices of the currents ``[a; I_I]`` (any
    dtype; upcast here). Then ``d a = g_E G / q``, ``I_I`` has only the divisive path, ``d W_EI``
    is zero (the subtractive path's gradient flows through the folded weight), and ``d
    currents`` comes back in the currents' dtype."""
    n_e, currents_dtype = a.shape[1], a.dtype
    dtype = _node_dtype(currents_dtype, balanced)
    with torch.autocast(a.device.type, enabled=False):
        if balanced:
            a, i_i = _upcast(a, dtype), _upcast(i_i, dtype)
        w_ei_c, w_gi_c, g = w_ei.to(dtype), w_gi.to(dtype), g_e.to(dtype)
        div = _mix(w_gi_c, i_i)
        grad = grad_out.reshape(a.shape)
        grad_currents = a.new_empty(a.shape[0], n_e + i_i.shape[1], a.shape[2])
        grad_ee = grad_currents[:, :n_e]
        kernels = device_kernels(a, kernel)
        if kernels is not None:
            grad_g_e, grad_b_e = kernels.ei_backward(
                grad.contiguous().to(dtype), a, div, grad_ee, g, row_min, mode, epsilon
            )
        else:
            stabilize_(div, mode, epsilon, row_min)
            grad_ee.copy_(grad).div_(div)  # G / q
            product = torch.mul(a, grad_ee)  # G/q * (I_EE - sub)
            grad_g_e, grad_b_e = product.sum(dim=(0, 2)), grad.sum(dim=(0, 2))
            torch.div(product.mul_(g.view(1, -1, 1)), div, out=div)
            grad_ee.mul_(g.view(1, -1, 1))  # dI_EE = -d sub (d a when balanced)
        minus_grad_div = div  # g G (I_EE - sub) / q^2 = -dL/d div (straight-through)
        subtractive = None if balanced else _mix(-w_ei_c.t(), grad_ee)
        grad_currents[:, n_e:] = _mix(-w_gi_c.t(), minus_grad_div, accumulate=subtractive)
        grad_w_ei = torch.zeros_like(w_ei) if balanced else -_mix_weight_grad(i_i, grad_ee)
        grad_w_gi = -_mix_weight_grad(i_i, minus_grad_div)
    return (
        grad_currents.to(currents_dtype),
        grad_w_ei.to(w_ei.dtype),
        grad_w_gi.to(w_gi.dtype),
        grad_g_e.to(g_e.dtype),
        grad_b_e.to(g_e.dtype),
    )


@ei_fused_backward.register_fake
def _ei_fused_backward_fake(
    grad_out, a, i_i, w_ei, w_gi, g_e, row_min, mode, epsilon, kernel, balanced
):
    """Shapes and dtypes of ``ei_fused_backward``'s outputs."""
    n, n_e, positions = a.shape
    return (
        a.new_empty(n, n_e + i_i.shape[1], positions),
        torch.empty_like(w_ei),
        torch.empty_like(w_gi),
        torch.empty_like(g_e),
        torch.empty_like(g_e),
    )


def _ei_setup_context(ctx, inputs, output) -> None:
    """Save ``a``, ``I_I`` (balanced: the currents themselves), the row minima and the weights;
    only the first output has a gradient."""
    currents, w_ei, w_gi, g_e, _, n_excitatory, mode, epsilon, kernel, balanced = inputs
    _, a, i_i, row_min = output
    ctx.mark_non_differentiable(a, i_i, row_min)
    ctx.set_materialize_grads(False)
    state = (currents,) if balanced else (a, i_i)
    ctx.save_for_backward(*state, w_ei, w_gi, g_e, row_min)
    ctx.shape, ctx.n_excitatory = currents.shape, n_excitatory
    ctx.mode, ctx.epsilon, ctx.kernel, ctx.balanced = mode, epsilon, kernel, balanced


@first_order_only("eisnn::ei_fused_forward", "ei_integrate_eager")
def _ei_backward(ctx, grad_out: torch.Tensor | None, *_state_grads: None) -> tuple:
    """Gradients of ``ei_fused_forward``'s inputs (``ei_fused_backward``); none for an undefined
    output gradient, and none for ``W_EI`` in the balanced mode."""
    if grad_out is None:
        return (None,) * 10
    *state, w_ei, w_gi, g_e, row_min = ctx.saved_tensors
    if ctx.balanced:  # the channel slices [a; I_I] of the saved currents
        state = split_currents(state[0].reshape(*ctx.shape[:2], -1), ctx.n_excitatory)
    grad_currents, grad_w_ei, *grads = ei_fused_backward(
        grad_out, *state, w_ei, w_gi, g_e, row_min, ctx.mode, ctx.epsilon, ctx.kernel, ctx.balanced
    )
    grad_w_ei = None if ctx.balanced else grad_w_ei
    return (grad_currents.view(ctx.shape), grad_w_ei, *grads, *(None,) * 5)


ei_fused_forward.register_autograd(_ei_backward, setup_context=_ei_setup_context)


def fused_supported(readout: bool, stabilization: str, ste: bool) -> bool:
    """Whether the fused node computes this configuration (hidden layer, ReLU I units, no leak,
    and a straight-through or no replacement)."""
    return not readout and (ste or stabilization != "adaptive")


def ei_integrate_fused(
    currents: torch.Tensor,
    n_excitatory: int,
    w_ei: torch.Tensor,
    g_i: torch.Tensor,
    g_e: torch.Tensor,
    b_e: torch.Tensor,
    *,
    stabilization: str = "adaptive",
    epsilon: float = 1e-8,
    kernel: bool = False,
    balanced: bool = False,
) -> torch.Tensor:
    """``g_E (I_EE - sub) / stabilize(div) + b_E`` of the stacked currents ``[I_EE; I_I]`` (split
    after ``n_excitatory`` channels) as one autograd node, the element-wise work in the device's
    kernels when ``kernel`` (``devices.device_kernels``), else in PyTorch ops. Same result as
    ``ei_integrate_eager`` to float rounding, straight-through estimator included.

    ``balanced``: the currents are ``[a; I_I]`` of the folded weight (``a = I_EE - sub``
    already), computed in at least float32 and returned so; same result as
    ``precision.ei_integrate_balanced``."""
    w_gi = w_ei * g_i.view(1, -1)
    return ei_fused_forward(
        currents, w_ei, w_gi, g_e, b_e, n_excitatory, stabilization, epsilon, kernel, balanced
    )[0]
