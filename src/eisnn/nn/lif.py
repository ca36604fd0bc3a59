"""The multi-step LIF neuron as a module (SPEC section 5)."""

from __future__ import annotations

import torch
from torch import nn

from .. import functional as EF


class LIF(nn.Module):
    """Leaky integrate-and-fire over ``T`` steps: input ``[T, B, ...]`` currents, output spikes.

    Stateless across calls: the membrane starts at 0 every forward (no reset to forget).
    """

    emits_spikes = True  # its output is spikes (see ``is_spiking_neuron``)

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        surrogate: str = "sigmoid",
        alpha: float = 4.0,
    ) -> None:
        super().__init__()
        if tau < 1:
            raise ValueError(f"LIF tau must be >= 1, got {tau}")
        if v_threshold <= 0:
            raise ValueError(f"LIF v_threshold must be > 0, got {v_threshold}")
        EF.surrogate_derivative(surrogate)  # validates the name
        self.tau = tau
        self.v_threshold = v_threshold
        self.surrogate = surrogate
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, ...]``. Under autocast the membrane integrates in float32 (the input is
        cast to float32, so the spikes are float32 too)."""
        if EF.autocast_active(x):
            x = x.float()
        return EF.lif_multistep(x, self.tau, self.v_threshold, self.surrogate, self.alpha)

    def step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``(spikes, new membrane)`` for layers that loop over time themselves."""
        return EF.lif_step(x, v, self.tau, self.v_threshold, self.surrogate, self.alpha)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, "
            f"surrogate={self.surrogate!r}, alpha={self.alpha}"
        )


def is_spiking_neuron(module: nn.Module) -> bool:
    """True for a module whose output is spikes: its class declares ``emits_spikes = True``
    (the LIF here; the baselines' neurons declare it too). Firing-rate monitors hook these."""
    return getattr(type(module), "emits_spikes", False) is True
