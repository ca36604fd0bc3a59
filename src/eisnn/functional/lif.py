"""Multi-step leaky integrate-and-fire neuron (SPEC section 5).

For an input current ``X`` of shape ``[T, ...]`` and a membrane starting at 0::

    H[t] = V[t-1] - V[t-1] / tau + X[t]      (the input is not decayed)
    S[t] = heaviside(H[t] - V_th)            (1 when H == V_th)
    V[t] = H[t] - V_th * S[t]                (soft reset, S detached from the graph)

The backward pass uses the surrogate derivative of the step (``functional.surrogate``)::

    dL/dH[t]   = dL/dS[t] * sg'(H[t] - V_th) + dL/dV[t]
    dL/dV[t-1] = dL/dH[t] - dL/dH[t] / tau
    dL/dX[t]   = dL/dH[t]

Two implementations: ``lif_multistep_eager`` (a loop differentiated by autograd, the reference)
and ``lif_multistep_fused`` (one autograd node: the forward loop writes into preallocated
buffers and saves only ``U = H - V_th``; the backward runs the recurrence above in reverse).
Both compute the forward with the same floating-point operations, so spikes are bit-identical.
"""

from __future__ import annotations

import torch

from .surrogate import spike, surrogate_derivative


def lif_multistep_eager(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
) -> torch.Tensor:
    """Reference LIF: a plain loop over time, differentiated by autograd. Returns spikes ``[T, ...]``."""
    v = torch.zeros_like(x[0])
    spikes = []
    for t in range(x.shape[0]):
        h = v - v / tau + x[t]
        s = spike(h - v_threshold, surrogate, alpha)
        v = h - v_threshold * s.detach()
        spikes.append(s)
    return torch.stack(spikes)


def _lif_forward(x: torch.Tensor, tau: float, v_threshold: float, u: torch.Tensor | None) -> torch.Tensor:
    """Spikes of the LIF recurrence, without autograd; ``U[t] = H[t] - V_th`` is written into ``u`` if given."""
    spikes = torch.empty_like(x)
    v = torch.zeros_like(x[0])
    h = torch.empty_like(v)
    scratch = torch.empty_like(v)
    for t in range(x.shape[0]):
        torch.div(v, tau, out=scratch)
        torch.sub(v, scratch, out=h)
        h.add_(x[t])
        u_t = u[t] if u is not None else scratch
        torch.sub(h, v_threshold, out=u_t)
        torch.ge(u_t, 0, out=spikes[t])
        torch.sub(h, spikes[t], alpha=v_threshold, out=v)
    return spikes


class _LIFMultistep(torch.autograd.Function):
    """The LIF over ``T`` steps as one autograd node that saves ``U = H - V_th`` only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, tau: float, v_threshold: float, surrogate: str, alpha: float):  # type: ignore[override]
        u = torch.empty_like(x)
        spikes = _lif_forward(x, tau, v_threshold, u)
        ctx.save_for_backward(u)
        ctx.tau, ctx.surrogate, ctx.alpha = tau, surrogate, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        derivative = surrogate_derivative(ctx.surrogate)
        grad_x = torch.empty_like(u)
        grad_v = torch.zeros_like(u[0])
        for t in range(u.shape[0] - 1, -1, -1):
            grad_h = grad_x[t]
            torch.mul(grad_spikes[t], derivative(u[t], ctx.alpha), out=grad_h)
            grad_h.add_(grad_v)
            torch.div(grad_h, ctx.tau, out=grad_v)
            torch.sub(grad_h, grad_v, out=grad_v)
        return grad_x, None, None, None, None


def lif_multistep_fused(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
) -> torch.Tensor:
    """Same as ``lif_multistep_eager``, as one autograd node (no graph or saved state when no gradient is needed)."""
    surrogate_derivative(surrogate)  # validates the name before any work
    if torch.is_grad_enabled() and x.requires_grad:
        return _LIFMultistep.apply(x, tau, v_threshold, surrogate, alpha)
    with torch.no_grad():
        return _lif_forward(x, tau, v_threshold, None)
