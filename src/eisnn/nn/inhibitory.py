"""Spiking inhibitory units (beyond the paper, which reduces them to instantaneous ReLU units).

With ``inhibitory="lif"`` the I population of an E-I layer is a LIF population with its own
``tau_I``, threshold and surrogate: it integrates ``I_I`` over the ``T`` steps and its spikes
``s_I`` replace ``I_I`` in the subtractive and divisive paths. E-I layers see the merged
``[T*B, ...]`` batch, so the population is told ``T`` at construction (``time_steps``).
"""

from __future__ import annotations

import torch
from torch import nn

from .lif import LIF

INHIBITORY_KINDS: tuple[str, ...] = ("relu", "lif")


class InhibitoryPopulation(nn.Module):
    """LIF inhibitory units over ``time_steps`` steps: ``I_I [T*B, n_I, ...] -> s_I``
    (same shape)."""

    def __init__(self, lif: LIF, time_steps: int) -> None:
        super().__init__()
        if time_steps < 1:
            raise ValueError(f"spiking I units need time_steps >= 1, got {time_steps}")
        self.lif = lif
        self.time_steps = time_steps

    @staticmethod
    def create(
        kind: str,
        tau: float,
        v_threshold: float,
        surrogate: str,
        alpha: float,
        time_steps: int | None,
    ) -> InhibitoryPopulation | None:
        """``None`` for the paper's ReLU units (``s_I = I_I``), a LIF population for ``"lif"``."""
        if kind not in INHIBITORY_KINDS:
            raise ValueError(f"inhibitory must be one of {list(INHIBITORY_KINDS)}, got {kind!r}")
        if kind == "relu":
            return None
        if time_steps is None:
            raise ValueError(
                "inhibitory='lif' needs time_steps (the network's T): "
                "the I units integrate over time"
            )
        return InhibitoryPopulation(LIF(tau, v_threshold, surrogate, alpha), time_steps)

    def forward(self, i_i: torch.Tensor) -> torch.Tensor:
        n = i_i.shape[0]
        if n % self.time_steps:
            raise ValueError(
                f"spiking I units were built for T={self.time_steps}, "
                f"but the merged batch has {n} rows (not a multiple of {self.time_steps})"
            )
        s = self.lif(i_i.reshape(self.time_steps, n // self.time_steps, *i_i.shape[1:]))
        return s.reshape(i_i.shape)

    def step(self, i_i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``(s_I, new membrane)`` for layers that loop over time themselves."""
        return self.lif.step(i_i, v)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}"
