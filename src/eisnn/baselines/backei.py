"""BackEISNN neurons (Zhao et al., Neural Networks 2022): a neuron whose output sign is dynamic.

Multi-step, time-major input currents ``I`` of shape ``[T, B, C, H, W]``, state starting at zero
every call (``V_0 = 0``, ``s_0 = 0``). One step of the BackEI neuron::

    V_t = 0.2 V_{t-1} + sigmoid(conv_b(s_{t-1})) * I_t    # self-feedback gate (3x3 conv, bias)
    e_t = sign(conv_ei(V_t))                               # excitatory (+1) or inhibitory (-1)
    o_t = heaviside(V_t - 0.5)                             # 1 where V_t > 0.5
    V_t = V_t * (1 - o_t)                                  # hard reset
    s_t = e_t * o_t                                        # signed spikes in {-1, 0, +1}

Both the step and the sign use the rectangular surrogate: derivative 1 where ``|u| < 0.5``, 0
elsewhere. The plain neuron of the network's dense layers (``HardResetLIF``) is the same
integrate-fire-reset without gate and sign.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

RECT_HALF_WIDTH = 0.5


class _Rectangular(torch.autograd.Function):
    """``fn(u)`` forward; backward passes the gradient where ``|u| < 0.5`` (rectangular
    surrogate)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        return fn(u)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * (u.abs() < RECT_HALF_WIDTH).to(grad.dtype), None


def _heaviside(u: torch.Tensor) -> torch.Tensor:
    return (u > 0).to(u.dtype)


def rect_spike(u: torch.Tensor) -> torch.Tensor:
    """``heaviside(u)`` (1 where ``u > 0``) with the rectangular surrogate."""
    return _Rectangular.apply(u, _heaviside)


def rect_sign(u: torch.Tensor) -> torch.Tensor:
    """``sign(u)`` in ``{-1, 0, +1}`` with the rectangular surrogate."""
    return _Rectangular.apply(u, torch.sign)


class HardResetLIF(nn.Module):
    """``V_t = decay V_{t-1} + I_t``, ``o_t = heaviside(V_t - threshold)``, ``V_t = V_t (1 - o_t)``.

    Input ``[T, ...]`` currents, output spikes ``[T, ...]``; rectangular surrogate.
    """

    emits_spikes = True  # see ``eisnn.nn.is_spiking_neuron``

    def __init__(self, decay: float = 0.2, v_threshold: float = 0.5) -> None:
        super().__init__()
        self.decay = decay
        self.v_threshold = v_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            v = self.decay * v + x[t]
            o = rect_spike(v - self.v_threshold)
            v = v * (1 - o)
            spikes.append(o)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, v_threshold={self.v_threshold}"


class BackEINeuron(nn.Module):
    """The BackEI neuron over ``[T, B, channels, H, W]`` input currents; output signed spikes."""

    emits_spikes = True  # see ``eisnn.nn.is_spiking_neuron``
    signed = True  # spikes in {-1, 0, +1}: a firing rate counts |s|

    def __init__(self, channels: int, decay: float = 0.2, v_threshold: float = 0.5) -> None:
        super().__init__()
        self.channels = channels
        self.decay = decay
        self.v_threshold = v_threshold
        self.conv_b = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_ei = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        s = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            v = self.decay * v + torch.sigmoid(self.conv_b(s)) * x[t]
            e = rect_sign(self.conv_ei(v))
            o = rect_spike(v - self.v_threshold)
            v = v * (1 - o)
            s = e * o
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, decay={self.decay}, v_threshold={self.v_threshold}"
