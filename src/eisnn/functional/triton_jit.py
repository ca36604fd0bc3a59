"""The Triton kernels behind ``triton_kernels`` (the maths is documented there).

Importing this module needs ``triton`` and fixes, through ``@triton.jit``, whether the kernels
are compiled for the GPU or run by Triton's interpreter (``TRITON_INTERPRET=1``, CPU tensors):
``triton_kernels`` imports it on first use only. Every kernel loads its inputs as float32
(bf16/fp16 are upcast), computes in float32 and stores in the output buffer's dtype; samples and
steps are addressed with 64-bit offsets.

Rounding follows the C kernels (``cpu_kernels.c``) and the PyTorch ops they replace: launched
with ``enable_fp_fusion=False`` (no fused multiply-add contraction), forward divisions IEEE
(``div_rn``). ``RECIPROCAL`` selects how ``v / tau`` rounds: ``v * (1/tau)`` as PyTorch computes a
division by a Python scalar on CUDA, else a true division as on the CPU.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _over_tau(v, tau, inv_tau, RECIPROCAL: tl.constexpr):
    """``v / tau`` rounded like PyTorch's division by a scalar on the tensors' device."""
    if RECIPROCAL:
        return v * inv_tau
    return tl.math.div_rn(v, tau)


@triton.jit
def _integrate(v, x, tau, inv_tau, TAU_HALF: tl.constexpr, RECIPROCAL: tl.constexpr):
    """``H = V - V / tau + X``; for ``tau == 2`` the exact ``X + 0.5 V``."""
    if TAU_HALF:
        return x + 0.5 * v
    return (v - _over_tau(v, tau, inv_tau, RECIPROCAL)) + x


@triton.jit
def _reset(h, v_threshold):
    """``V = H - V_th S`` with ``S = (H >= V_th)``."""
    return h - v_threshold * (h >= v_threshold).to(tl.float32)


@triton.jit
def _backward_step(
    h,
    grad_spike,
    grad_v,
    tau,
    inv_tau,
    v_threshold,
    alpha,
    arctan_scale,
    TAU_HALF: tl.constexpr,
    RECIPROCAL: tl.constexpr,
    SIGMOID: tl.constexpr,
):
    """``(dH[t], dV[t-1])`` from ``H[t]``, ``dS[t]`` and ``dV[t]``:
    ``dH = dV + dS sg'(H - V_th)``, ``dV[t-1] = dH - dH / tau``."""
    u = h - v_threshold
    if SIGMOID:
        sig = tl.sigmoid(alpha * u)
        grad_h = grad_v + alpha * (grad_spike * (1.0 - sig) * sig)
    else:
        q = arctan_scale * u
        grad_h = grad_v + grad_spike * ((0.5 * alpha) / (1.0 + q * q))
    if TAU_HALF:
        return grad_h, grad_h * 0.5
    return grad_h, grad_h - _over_tau(grad_h, tau, inv_tau, RECIPROCAL)


@triton.jit
def lif_forward_kernel(
    x_ptr,
    spikes_ptr,
    steps,
    m,
    tau,
    inv_tau,
    v_threshold,
    TAU_HALF: tl.constexpr,
    RECIPROCAL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Spikes of ``BLOCK`` elements of ``X [steps, m]``, the membrane in registers."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < m
    x_at, s_at = x_ptr + offsets, spikes_ptr + offsets
    v = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(steps):
        x = tl.load(x_at, mask=mask, other=0.0).to(tl.float32)
        h = _integrate(v, x, tau, inv_tau, TAU_HALF, RECIPROCAL)
        tl.store(s_at, (h >= v_threshold).to(tl.float32), mask=mask)
        v = _reset(h, v_threshold)
        x_at += m
        s_at += m


@triton.jit
def lif_backward_registers_kernel(
    x_ptr,
    grad_spikes_ptr,
    grad_x_ptr,
    m,
    tau,
    inv_tau,
    v_threshold,
    alpha,
    arctan_scale,
    STEPS: tl.constexpr,
    HISTORY: tl.constexpr,
    TAU_HALF: tl.constexpr,
    RECIPROCAL: tl.constexpr,
    SIGMOID: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``dL/dX`` of ``BLOCK`` elements, ``H`` of all ``STEPS`` (``<= HISTORY``, a power of two)
    recomputed from ``X`` and kept in a ``[HISTORY, BLOCK]`` register tile."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < m
    rows = tl.arange(0, HISTORY)[:, None]
    history = tl.zeros([HISTORY, BLOCK], dtype=tl.float32)
    x_at = x_ptr + offsets
    gs_at, gx_at = grad_spikes_ptr + offsets, grad_x_ptr + offsets
    v = tl.zeros([BLOCK], dtype=tl.float32)
    for t in tl.static_range(STEPS):
        h = _integrate(
            v,
            tl.load(x_at, mask=mask, other=0.0).to(tl.float32),
            tau,
            inv_tau,
            TAU_HALF,
            RECIPROCAL,
        )
        history = tl.where(rows == t, h[None, :], history)
        v = _reset(h, v_threshold)
        x_at += m
        gs_at += m
        gx_at += m
    grad_v = tl.zeros([BLOCK], dtype=tl.float32)
    for i in tl.static_range(STEPS):
        gs_at -= m
        gx_at -= m
        h = tl.sum(tl.where(rows == STEPS - 1 - i, history, 0.0), axis=0)
        grad_spike = tl.load(gs_at, mask=mask, other=0.0).to(tl.float32)
        grad_h, grad_v = _backward_step(
            h,
            grad_spike,
            grad_v,
            tau,
            inv_tau,
            v_threshold,
            alpha,
            arctan_scale,
            TAU_HALF,
            RECIPROCAL,
            SIGMOID,
        )
        tl.store(gx_at, grad_h, mask=mask)


@triton.jit
def lif_backward_history_kernel(
    x_ptr,
    grad_spikes_ptr,
    grad_x_ptr,
    h_ptr,
    steps,
    m,
    tau,
    inv_tau,
    v_threshold,
    alpha,
    arctan_scale,
    TAU_HALF: tl.constexpr,
    RECIPROCAL: tl.constexpr,
    SIGMOID: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``dL/dX`` of ``BLOCK`` elements for any number of steps: ``H`` recomputed from ``X`` into
    the float32 buffer ``h [steps, m]`` (which may be ``grad_x`` itself: each ``H[t]`` is read
    before ``dX[t]`` overwrites it), then read back in reverse."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < m
    x_at, h_at = x_ptr + offsets, h_ptr + offsets
    gs_at, gx_at = grad_spikes_ptr + offsets, grad_x_ptr + offsets
    v = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(steps):
        h = _integrate(
            v,
            tl.load(x_at, mask=mask, other=0.0).to(tl.float32),
            tau,
            inv_tau,
            TAU_HALF,
            RECIPROCAL,
        )
        tl.store(h_at, h, mask=mask)
        v = _reset(h, v_threshold)
        x_at += m
        h_at += m
        gs_at += m
        gx_at += m
    grad_v = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(steps):
        h_at -= m
        gs_at -= m
        gx_at -= m
        h = tl.load(h_at, mask=mask, other=0.0)
        grad_spike = tl.load(gs_at, mask=mask, other=0.0).to(tl.float32)
        grad_h, grad_v = _backward_step(
            h,
            grad_spike,
            grad_v,
            tau,
            inv_tau,
            v_threshold,
            alpha,
            arctan_scale,
            TAU_HALF,
            RECIPROCAL,
            SIGMOID,
        )
        tl.store(gx_at, grad_h, mask=mask)


@triton.jit
def row_min_kernel(div_ptr, row_min_ptr, length, BLOCK: tl.constexpr):
    """Per sample (one program each): the smallest non-zero entry of its ``length`` values of
    ``div``, ``+inf`` when there is none, NaN when any entry is NaN."""
    start_of = div_ptr + tl.program_id(0).to(tl.int64) * length
    best = tl.full([BLOCK], float("inf"), dtype=tl.float32)
    nan = tl.zeros([BLOCK], dtype=tl.int32)
    for start in range(0, length, BLOCK):
        offsets = start + tl.arange(0, BLOCK)
        d = tl.load(start_of + offsets, mask=offsets < length, other=0.0).to(tl.float32)
        nan = tl.maximum(nan, (d != d).to(tl.int32))
        best = tl.minimum(best, tl.where(d == 0.0, float("inf"), d))
    lowest = tl.min(best, axis=0)
    tl.store(
        row_min_ptr + tl.program_id(0), tl.where(tl.max(nan, axis=0) > 0, float("nan"), lowest)
    )


@triton.jit
def _stabilized(d, fill, epsilon, MODE: tl.constexpr):
    """``q``: zeros replaced by ``fill`` (adaptive), ``d + eps`` (epsilon), or ``d`` (none)."""
    if MODE == "adaptive":
        return tl.where(d == 0.0, fill, d)
    if MODE == "epsilon":
        return d + epsilon
    return d


@triton.jit
def _tile(e, p, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, p_start):
    """Channels ``c [BLOCK_C, 1]``, offsets ``c p + k`` within a sample, and the in-bounds mask of
    the tile at channel block ``program_id(1)`` and positions from ``p_start``."""
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[:, None]
    k = p_start + tl.arange(0, BLOCK_P)[None, :]
    return c, c * p + k, (c < e) & (k < p)


@triton.jit
def ei_forward_kernel(
    i_ee_ptr,
    ee_stride,
    sub_ptr,
    div_ptr,
    out_ptr,
    g_ptr,
    b_ptr,
    row_min_ptr,
    e,
    p,
    epsilon,
    MODE: tl.constexpr,
    BALANCED: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One ``[BLOCK_C, BLOCK_P]`` tile of sample ``program_id(0)``: ``a = I_EE - sub`` (over
    ``sub``), ``out = g a / q + b``; ``BALANCED``: ``sub`` holds ``a`` (only read)."""
    s = tl.program_id(0).to(tl.int64)
    c, inner, mask = _tile(e, p, BLOCK_C, BLOCK_P, tl.program_id(2) * BLOCK_P)
    at = s * e * p + inner
    if BALANCED:
        a = tl.load(sub_ptr + at, mask=mask, other=0.0).to(tl.float32)
    else:
        i_ee = tl.load(i_ee_ptr + s * ee_stride + inner, mask=mask, other=0.0).to(tl.float32)
        a = i_ee - tl.load(sub_ptr + at, mask=mask, other=0.0).to(tl.float32)
        tl.store(sub_ptr + at, a, mask=mask)
    fill = tl.load(row_min_ptr + s) if MODE == "adaptive" else 0.0
    q = _stabilized(tl.load(div_ptr + at, mask=mask, other=1.0).to(tl.float32), fill, epsilon, MODE)
    g = tl.load(g_ptr + c, mask=c < e, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + c, mask=c < e, other=0.0).to(tl.float32)
    tl.store(out_ptr + at, tl.math.div_rn(g * a, q) + b, mask=mask)


@triton.jit
def ei_backward_kernel(
    grad_ptr,
    a_ptr,
    div_ptr,
    d_ee_ptr,
    ee_stride,
    g_ptr,
    row_min_ptr,
    sum_g_ptr,
    sum_b_ptr,
    e,
    p,
    epsilon,
    MODE: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """``BLOCK_C`` channels of sample ``program_id(0)``, all positions: ``dI_EE = g G / q``,
    ``div := g G a / q^2``, and per channel the sums over positions of ``G a / q`` and ``G``."""
    s = tl.program_id(0).to(tl.int64)
    fill = tl.load(row_min_ptr + s) if MODE == "adaptive" else 0.0
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    g = tl.load(g_ptr + channels, mask=channels < e, other=0.0).to(tl.float32)[:, None]
    acc_g = tl.zeros([BLOCK_C, BLOCK_P], dtype=tl.float32)
    acc_b = tl.zeros([BLOCK_C, BLOCK_P], dtype=tl.float32)
    for start in range(0, p, BLOCK_P):
        _, inner, mask = _tile(e, p, BLOCK_C, BLOCK_P, start)
        at = s * e * p + inner
        grad = tl.load(grad_ptr + at, mask=mask, other=0.0).to(tl.float32)
        a = tl.load(a_ptr + at, mask=mask, other=0.0).to(tl.float32)
        d = tl.load(div_ptr + at, mask=mask, other=1.0).to(tl.float32)
        q = _stabilized(d, fill, epsilon, MODE)
        grad_q = tl.math.div_rn(grad, q)
        product = grad_q * a
        tl.store(d_ee_ptr + s * ee_stride + inner, g * grad_q, mask=mask)
        tl.store(div_ptr + at, tl.math.div_rn(g * product, q), mask=mask)
        acc_g += tl.where(mask, product, 0.0)
        acc_b += grad
    at_sum = s * e + channels
    tl.store(sum_g_ptr + at_sum, tl.sum(acc_g, axis=1), mask=channels < e)
    tl.store(sum_b_ptr + at_sum, tl.sum(acc_b, axis=1), mask=channels < e)
