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
differentiated by autograd, the reference) and ``lif_multistep_fused``: one custom operation
(``eisnn::lif_forward``, its autograd ``eisnn::lif_backward``, fake implementations for
``torch.compile`` and ``torch.export``). It runs the device's one-pass kernels when told to
(``tiers`` decides; ``devices.device_kernels`` picks C on CPU, Triton on CUDA, for float32; the
backward recomputes ``H`` from the saved input); else (other dtypes, no kernels) a loop of
PyTorch ops into preallocated buffers that saves ``H``. Both round the membrane exactly like the
eager loop, so spikes are bit-identical; the backward agrees to float rounding (the surrogate's
product is evaluated in another order, and the kernel's ``exp`` is within 2 ulp).
"""

from __future__ import annotations

import torch

from .devices import device_kernels
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


def _lif_backward_loop(
    h: torch.Tensor,
    grad_spikes: torch.Tensor,
    tau: float,
    v_threshold: float,
    surrogate: str,
    alpha: float,
) -> torch.Tensor:
    """``dL/dX`` from the membranes ``H`` and ``dL/dS``: the backward recurrence, as PyTorch ops
    into preallocated buffers."""
    grad_x = torch.empty_like(h)
    grad_v = torch.zeros_like(h[0])
    u = torch.empty_like(h[0])
    for t in range(h.shape[0] - 1, -1, -1):
        torch.sub(h[t], v_threshold, out=u)
        grad_h = grad_x[t]
        _add_spike_grad(grad_v, grad_spikes[t], u, surrogate, alpha, out=grad_h)
        if tau == 2.0:
            torch.mul(grad_h, 0.5, out=grad_v)
        else:
            torch.div(grad_h, tau, out=grad_v)
            torch.sub(grad_h, grad_v, out=grad_v)
    return grad_x


@torch.library.custom_op("eisnn::lif_forward", mutates_args=())
def lif_forward(
    x: torch.Tensor,
    tau: float,
    v_threshold: float,
    surrogate: str,
    alpha: float,
    kernel: bool,
    save_state: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, H)``: the spikes ``[T, ...]`` of the LIF over ``x`` and, if ``save_state`` and no
    kernel computes it (``devices.device_kernels``), the membranes ``H`` its backward needs;
    else an empty tensor (the kernels' backward recomputes ``H`` from ``x``). ``surrogate`` and
    ``alpha`` serve the backward."""
    kernels = device_kernels(x, kernel)
    if kernels is not None:
        return kernels.lif_forward(x, tau, v_threshold), x.new_empty(0)
    h = torch.empty_like(x) if save_state else None
    return _lif_forward(x, tau, v_threshold, h), x.new_empty(0) if h is None else h


@lif_forward.register_fake
def _lif_forward_fake(x, tau, v_threshold, surrogate, alpha, kernel, save_state):
    """Shapes and dtypes of ``lif_forward``'s outputs."""
    keeps_h = save_state and device_kernels(x, kernel) is None
    return torch.empty_like(x), torch.empty_like(x) if keeps_h else x.new_empty(0)


@torch.library.custom_op("eisnn::lif_backward", mutates_args=())
def lif_backward(
    grad_spikes: torch.Tensor,
    saved: torch.Tensor,
    tau: float,
    v_threshold: float,
    surrogate: str,
    alpha: float,
    saved_input: bool,
) -> torch.Tensor:
    """``dL/dX`` from ``dL/dS`` and what ``lif_forward`` saved: the membranes ``H``, or the input
    ``X`` (``saved_input``; the device's kernels recompute ``H`` from it, else the PyTorch loop
    does first)."""
    if saved_input:
        kernels = device_kernels(saved, kernel=True)
        if kernels is not None:
            return kernels.lif_backward(
                saved, grad_spikes.to(saved.dtype), tau, v_threshold, surrogate, alpha
            )
        h = torch.empty_like(saved)
        _lif_forward(saved, tau, v_threshold, h)
        saved = h
    return _lif_backward_loop(saved, grad_spikes, tau, v_threshold, surrogate, alpha)


@lif_backward.register_fake
def _lif_backward_fake(grad_spikes, saved, tau, v_threshold, surrogate, alpha, saved_input):
    """Shape and dtype of ``lif_backward``'s output."""
    return torch.empty_like(saved)


def _lif_setup_context(ctx, inputs, output) -> None:
    """Save ``X`` when a kernel computed the forward, else ``H``; the membranes have no
    gradient."""
    x, tau, v_threshold, surrogate, alpha, kernel, save_state = inputs
    if not save_state:
        raise RuntimeError("eisnn::lif_forward with save_state=False cannot be differentiated")
    _, h = output
    ctx.mark_non_differentiable(h)
    ctx.set_materialize_grads(False)
    ctx.saved_input = device_kernels(x, kernel) is not None
    ctx.save_for_backward(x if ctx.saved_input else h)
    ctx.options = (tau, v_threshold, surrogate, alpha)


@first_order_only("eisnn::lif_forward", "lif_multistep_eager")
def _lif_backward(ctx, grad_spikes: torch.Tensor | None, _grad_h: None) -> tuple:
    """Gradient of ``lif_forward``'s input (``lif_backward``); none for an undefined output
    gradient."""
    if grad_spikes is None:
        return (None,) * 7
    (saved,) = ctx.saved_tensors
    grad_x = lif_backward(grad_spikes, saved, *ctx.options, ctx.saved_input)
    return grad_x, None, None, None, None, None, None


lif_forward.register_autograd(_lif_backward, setup_context=_lif_setup_context)


def lif_multistep_fused(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    surrogate: str = "sigmoid",
    alpha: float = 4.0,
    *,
    kernel: bool = False,
) -> torch.Tensor:
    """Same as ``lif_multistep_eager``, as one custom operation (``eisnn::lif_forward``; no saved
    state when no gradient is needed); the device's kernels when ``kernel`` (``devices``)."""
    surrogate_derivative(surrogate)  # validates the name before any work
    save_state = torch.is_grad_enabled() and x.requires_grad
    return lif_forward(x, tau, v_threshold, surrogate, alpha, kernel, save_state)[0]
