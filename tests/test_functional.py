"""The functional core: E-I integration (gradcheck, STE, gradient scaling) and the LIF neuron."""

from __future__ import annotations

import math

import pytest
import torch

from eisnn import functional as EF


def _inputs(conv: bool, dtype=torch.float64, zeros: bool = False):
    shape_e, shape_i = ((6, 8, 3, 3), (6, 2, 3, 3)) if conv else ((6, 8), (6, 2))
    i_ee = torch.randn(shape_e, dtype=dtype)
    i_i = torch.rand(shape_i, dtype=dtype) + 0.5
    if zeros:
        i_i[0] = 0.0  # a silent row: every div entry of sample 0 is zero
        i_i[1, :, ...] = i_i[1, :, ...] * (torch.rand_like(i_i[1]) > 0.5)
    w_ei = torch.rand(8, 2, dtype=dtype) + 0.1
    g_i = torch.rand(2, dtype=dtype) + 0.5
    g_e = torch.rand(8, dtype=dtype) + 0.5
    b_e = torch.randn(8, dtype=dtype)
    return [t.requires_grad_() for t in (i_ee, i_i, w_ei, g_i, g_e, b_e)]


def _integrate(i_ee, i_i, *rest, **options):
    """``EF.ei_integrate`` of separate ``I_EE`` and ``I_I`` (stacked first)."""
    return EF.ei_integrate(torch.cat([i_ee, i_i], dim=1), i_ee.shape[1], *rest, **options)


def _independent(i_ee, i_i, w_ei, g_i, g_e, b_e, readout=False):
    """A second, loop-based implementation of SPEC section 1 (no zeros handled)."""
    n_e = i_ee.shape[1]
    out = []
    for e in range(n_e):
        sub = sum(w_ei[e, k] * i_i[:, k] for k in range(i_i.shape[1]))
        div = sum(w_ei[e, k] * g_i[k] * i_i[:, k] for k in range(i_i.shape[1]))
        out.append(i_ee[:, e] - sub if readout else g_e[e] * (i_ee[:, e] - sub) / div + b_e[e])
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("readout", [False, True])
def test_matches_independent_implementation(conv, readout):
    args = _inputs(conv)
    ours = _integrate(*args, readout=readout)
    ref = _independent(*args, readout=readout)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, args, g, allow_unused=True)
    grads_ref = torch.autograd.grad(ref, args, g, allow_unused=True)
    for a, b in zip(grads, grads_ref):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0
        else:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("conv", [False, True])
def test_gradcheck(conv):
    args = _inputs(conv)
    assert torch.autograd.gradcheck(lambda *a: _integrate(*a), args)
    assert torch.autograd.gradcheck(lambda *a: EF.ei_integrate_eager(*a), args)


def test_adaptive_stabilization_forward():
    div = torch.tensor([[0.0, 2.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 2.0, 4.0]])
    out = EF.stabilize(div)
    expected = torch.tensor([[0.5, 2.0, 0.5, 0.5], [math.inf] * 4, [3.0, 1.0, 2.0, 4.0]])
    assert torch.equal(out, expected)
    conv = torch.zeros(2, 3, 2, 2)
    conv[0, 1, 1, 0] = 0.25
    conv[0, 2, 0, 0] = 0.75
    out = EF.stabilize(conv)
    assert out[0, 0, 0, 0] == 0.25 and out[0, 2, 0, 0] == 0.75 and torch.isinf(out[1]).all()


def test_straight_through_estimator():
    """With STE the gradient equals that of the identity, with or without zeros present."""
    div = torch.tensor([[0.0, 2.0, 0.5], [1.0, 0.0, 3.0]], requires_grad=True)
    g = torch.randn(2, 3)
    (grad,) = torch.autograd.grad(EF.stabilize(div, ste=True), div, g)
    assert torch.equal(grad, g)
    positive = torch.tensor([[0.3, 2.0, 0.5], [1.0, 0.7, 3.0]], requires_grad=True)
    (grad_pos,) = torch.autograd.grad(EF.stabilize(positive, ste=True), positive, g)
    assert torch.equal(grad_pos, g)
    # Without STE the gradient of a replaced entry goes to the row minimum instead.
    (grad_no,) = torch.autograd.grad(EF.stabilize(div, ste=False), div, g)
    assert grad_no[0, 0] == 0 and grad_no[0, 2] == g[0, 2] + g[0, 0]


def test_stabilization_modes():
    div = torch.tensor([[0.0, 2.0]])
    assert torch.equal(EF.stabilize(div, "epsilon", 1e-3), torch.tensor([[1e-3, 2.0 + 1e-3]]))
    assert torch.equal(EF.stabilize(div, "none"), div)
    with pytest.raises(ValueError, match="stabilization"):
        EF.stabilize(div, "bogus")


def test_silent_row_gives_bias():
    i_ee, i_i, w_ei, g_i, g_e, b_e = (t.detach() for t in _inputs(False))
    i_i[0] = 0.0
    out = _integrate(i_ee, i_i, w_ei, g_i, g_e, b_e)
    torch.testing.assert_close(out[0], b_e)
    assert torch.isfinite(out).all()


def test_gradient_scaling_is_exactly_one_over_d():
    w = torch.randn(5, 3, requires_grad=True)
    g = torch.randn(5, 3)
    (grad,) = torch.autograd.grad(EF.divide_grad(w, 27.0), w, g)
    assert torch.equal(grad, g / 27.0)
    args = _inputs(True, dtype=torch.float32)
    out = _integrate(*args)
    scaled = _integrate(args[0], args[1], EF.divide_grad(args[2], 72.0), *args[3:])
    go = torch.randn_like(out)
    (plain,) = torch.autograd.grad(out, args[2], go)
    (divided,) = torch.autograd.grad(scaled, args[2], go)
    assert torch.equal(divided, plain / 72.0)


def test_no_host_sync_ops_in_integration():
    """The integration runs on meta tensors, which cannot be read on the host."""
    args = [
        torch.empty(s, device="meta")
        for s in [(4, 8, 3, 3), (4, 2, 3, 3), (8, 2), (2,), (8,), (8,)]
    ]
    assert _integrate(*args).shape == (4, 8, 3, 3)
