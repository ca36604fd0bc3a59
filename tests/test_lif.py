"""The multi-step LIF neuron against a plain step loop, and its surrogate derivatives."""

from __future__ import annotations

import math

import pytest
import torch

from eisnn import functional as EF
from eisnn.nn import LIF


def _loop_lif(x: torch.Tensor, tau: float, v_th: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and pre-spike membranes H[t] by the SPEC's equations, one element at a time in
    time."""
    v = torch.zeros_like(x[0])
    spikes, hs = [], []
    for t in range(x.shape[0]):
        h = (1 - 1 / tau) * v + x[t]
        s = (h >= v_th).to(x.dtype)
        v = h - v_th * s
        spikes.append(s)
        hs.append(h)
    return torch.stack(spikes), torch.stack(hs)


def _loop_grad(x, g, tau, v_th, deriv):
    """The backward recurrence of the LIF with a detached reset, written out by hand."""
    _, h = _loop_lif(x, tau, v_th)
    grad_x = torch.zeros_like(x)
    grad_v = torch.zeros_like(x[0])
    for t in reversed(range(x.shape[0])):
        grad_h = g[t] * deriv(h[t] - v_th) + grad_v
        grad_x[t] = grad_h
        grad_v = (1 - 1 / tau) * grad_h
    return grad_x


@pytest.mark.parametrize("surrogate,alpha", [("sigmoid", 4.0), ("arctan", 2.0)])
@pytest.mark.parametrize("tau,v_th", [(2.0, 1.0), (3.0, 0.5)])
def test_lif_matches_step_loop(surrogate, alpha, tau, v_th):
    x = (torch.rand(6, 3, 5, dtype=torch.float64) * 1.5).requires_grad_()
    spikes = EF.lif_multistep(x, tau, v_th, surrogate, alpha)
    expected, _ = _loop_lif(x.detach(), tau, v_th)
    assert torch.equal(spikes, expected)
    assert spikes.sum() > 0 and spikes.sum() < spikes.numel()
    g = torch.randn_like(spikes)
    (grad,) = torch.autograd.grad(spikes, x, g)
    deriv = lambda u: EF.surrogate_derivative(surrogate)(u, alpha)
    torch.testing.assert_close(grad, _loop_grad(x.detach(), g, tau, v_th, deriv))
    eager = EF.lif_multistep_eager(x, tau, v_th, surrogate, alpha)
    (grad_eager,) = torch.autograd.grad(eager, x, g)
    assert torch.equal(eager, spikes)
    torch.testing.assert_close(grad, grad_eager)


def test_spike_at_threshold_and_membrane_restarts():
    x = torch.tensor([[1.0], [0.0], [0.5]])
    lif = LIF()
    assert lif(x).flatten().tolist() == [1.0, 0.0, 0.0]
    assert torch.equal(lif(x), lif(x)), "membrane must start from zero on every call"


def test_surrogate_formulas():
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    sig = torch.sigmoid(4 * u)
    torch.testing.assert_close(EF.surrogate_derivative("sigmoid")(u, 4.0), 4 * sig * (1 - sig))
    torch.testing.assert_close(
        EF.surrogate_derivative("arctan")(u, 2.0), 1.0 / (1 + (math.pi * u) ** 2)
    )
    # The surrogate is the derivative of sigmoid(a u) / its arctan counterpart: check numerically.
    x = u.clone().requires_grad_()
    (d,) = torch.autograd.grad(torch.sigmoid(4 * x).sum(), x)
    torch.testing.assert_close(EF.surrogate_derivative("sigmoid")(u, 4.0), d)
    (d,) = torch.autograd.grad((torch.atan(math.pi / 2 * 2 * x) / math.pi).sum(), x)
    torch.testing.assert_close(EF.surrogate_derivative("arctan")(u, 2.0), d)
    (g,) = torch.autograd.grad(EF.spike(x, "sigmoid", 4.0).sum(), x)
    torch.testing.assert_close(g, d * 0 + EF.surrogate_derivative("sigmoid")(u, 4.0))


def test_bad_options():
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="triangle-ish")
    with pytest.raises(ValueError, match="tau"):
        LIF(tau=0.5)
