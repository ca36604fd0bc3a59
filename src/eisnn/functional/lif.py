"""Multi-step leaky integrate-and-fire neuron (SPEC section 5).

For an input current ``X`` of shape ``[T, ...]`` and a membrane starting at 0::

    H[t] = V[t-1] - V[t-1] / tau + X[t]      (the input is not decayed)
    S[t] = heaviside(H[t] - V_th)            (1 when H == V_th)
    V[t] = H[t] - V_th * S[t]                (soft reset, S detached from the graph)

The backward pass uses the surrogate derivative of the step (``functional.surrogate``)::

    dL/dH[t]   = dL/dS[t] * sg'(H[t] - V_th) + dL/dV[t]
    dL/dV[t-1] = dL/dH[t] - dL/dH[t] / tau
    dL/dX[t]   = dL/dH[t]

``lif_step`` is one step with explicit state (for layers that loop over time themselves). Two
implementations of the multi-step neuron: ``lif_multistep_eager`` (a loop of ``lif_step``
differentiated by autograd, the reference) and ``lif_multistep_fused`` (one autograd node). The
fused node runs the one-pass C kernels of ``cpu_kernels`` when told to (``tiers`` decides: float32
CPU tensors; the backward recomputes ``H`` from the saved input); else (CUDA, other dtypes,
``torch.compile``, no C compiler) a loop of PyTorch ops into preallocated buffers that saves
``H``. Both round the membrane exactly like the eager loop, so spikes are bit-identical; the
backward agrees to float rounding (the surrogate's product is evaluated in another order, and the
kernel's ``exp`` is within 2 ulp).
"""

from __future__ import annotations

import torch

from . import cpu_kernels
from .first_order import first_order_only
from .surrogate import spike, surrogate_derivative


def lif_step(
    x: torch.Tensor, v: torch.Tensor, tau: float, v_threshold: float, surrogate: str, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S[t], V[t])`` from the input ``X[t]`` and the membrane ``V[t-1]``: one LIF step."""
    h = v - v / tau + x
    s = spike(h - v_threshold, surrogate, alpha)
    return s, h - v_threshold * s.detach()


def lif_multistep_eager(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
) -> torch.Tensor:
    """Reference LIF: ``lif_step`` over time, differentiated by autograd. Returns spikes
    ``[T, ...]``."""
    v = torch.zeros_like(x[0])
    spikes = []
    for x_t in x:
        s, v = lif_step(x_t, v, tau, v_threshold, surrogate, alpha)
        spikes.append(s)
    return torch.stack(spikes)


def _integrate(
    v: torch.Tensor, x_t: torch.Tensor, tau: float, out: torch.Tensor, scratch: torch.Tensor
) -> None:
    """``out = v - v / tau + x_t`` with the eager rounding; for ``tau == 2`` in one pass, as
    ``v / 2`` is exact and so ``v - v / 2 == 0.5 * v``."""
    if tau == 2.0:
        torch.add(x_t, v, alpha=0.5, out=out)
        return
    torch.div(v, tau, out=scratch)
    torch.sub(v, scratch, out=out)
    out.add_(x_t)


def _lif_forward(
    x: torch.Tensor, tau: float, v_threshold: float, h: torch.Tensor | None
) -> torch.Tensor:
    """Spikes of the LIF recurrence, without autograd; ``H[t]`` is written into ``h`` if given."""
    spikes = torch.empty_like(x)
    v = torch.zeros_like(x[0])
    scratch = torch.empty_like(v)
    step = torch.empty_like(v) if h is None else None
    for t in range(x.shape[0]):
        h_t = step if h is None else h[t]
        _integrate(v, x[t], tau, h_t, scratch)
        torch.ge(
            h_t, v_threshold, out=spikes[t]
        )  # H >= V_th  <=>  H - V_th >= 0 (exact subtraction sign)
        torch.sub(h_t, spikes[t], alpha=v_threshold, out=v)
    return spikes


def _add_spike_grad(
    grad_v: torch.Tensor,
    grad_spike: torch.Tensor,
    u: torch.Tensor,
    surrogate: str,
    alpha: float,
    out: torch.Tensor,
) -> None:
    """``out = dL/dV + dL/dS * sg'(u)``; ``u`` is used as scratch. For the sigmoid surrogate,
    ``sg'(u) dL/dS = alpha * sigmoid_backward(dL/dS, sig(alpha u))``, in three passes."""
    if surrogate != "sigmoid":
        torch.add(grad_v, grad_spike * surrogate_derivative(surrogate)(u, alpha), out=out)
        return
    sig = torch.sigmoid_(u.mul_(alpha))
    torch.ops.aten.sigmoid_backward.grad_input(grad_spike, sig, grad_input=u)
    torch.add(grad_v, u, alpha=alpha, out=out)


class _LIFMultistep(torch.autograd.Function):
    """The LIF over ``T`` steps as one autograd node that saves one tensor: the input ``X`` for
    the CPU kernels, else ``H``."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        tau: float,
        v_threshold: float,
        surrogate: str,
        alpha: float,
        kernel: bool,
    ):  # type: ignore[override]
        ctx.tau, ctx.v_threshold, ctx.surrogate, ctx.alpha = tau, v_threshold, surrogate, alpha
        ctx.kernel = kernel
        if kernel:
            ctx.save_for_backward(x)
            return cpu_kernels.lif_forward(x, tau, v_threshold)
        h = torch.empty_like(x)
        spikes = _lif_forward(x, tau, v_threshold, h)
        ctx.save_for_backward(h)
        return spikes

    @staticmethod
    @first_order_only("lif_multistep_eager")
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        if ctx.kernel:
            (x,) = ctx.saved_tensors
            grad_x = cpu_kernels.lif_backward(
                x, grad_spikes.to(x.dtype), ctx.tau, ctx.v_threshold, ctx.surrogate, ctx.alpha
            )
            return grad_x, None, None, None, None, None
        (h,) = ctx.saved_tensors
        tau = ctx.tau
        grad_x = torch.empty_like(h)
        grad_v = torch.zeros_like(h[0])
        u = torch.empty_like(h[0])
        for t in range(h.shape[0] - 1, -1, -1):
            torch.sub(h[t], ctx.v_threshold, out=u)
            grad_h = grad_x[t]
            _add_spike_grad(grad_v, grad_spikes[t], u, ctx.surrogate, ctx.alpha, out=grad_h)
            if tau == 2.0:
                torch.mul(grad_h, 0.5, out=grad_v)
            else:
                torch.div(grad_h, tau, out=grad_v)
                torch.sub(grad_h, grad_v, out=grad_v)
        return grad_x, None, None, None, None, None


def lif_multistep_fused(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
    *,
    kernel: bool = False,
) -> torch.Tensor:
    """Same as ``lif_multistep_eager``, as one autograd node (no graph or saved state when no
    gradient is needed); the C kernels when ``kernel`` (float32 CPU input, a kernel surrogate)."""
    surrogate_derivative(surrogate)  # validates the name before any work
    if torch.is_grad_enabled() and x.requires_grad:
        return _LIFMultistep.apply(x, tau, v_threshold, surrogate, alpha, kernel)
    with torch.no_grad():
        if kernel:
            return cpu_kernels.lif_forward(x, tau, v_threshold)
        return _lif_forward(x, tau, v_threshold, None)
