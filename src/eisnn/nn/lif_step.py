"""One time step of the LIF neuron with explicit state, for layers that loop over time themselves
(recurrent layers, the I population inside a recurrent layer). Same maths as ``functional.lif``:

    H = V - V / tau + X,   S = heaviside(H - V_th),   V' = H - V_th * S   (S detached in the reset)
"""

from __future__ import annotations

import torch

from .. import functional as EF


def lif_step(
    x: torch.Tensor, v: torch.Tensor, tau: float, v_threshold: float, surrogate: str, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(spikes, new membrane)`` after one step with input current ``x`` and membrane ``v``."""
    h = v - v / tau + x
    s = EF.spike(h - v_threshold, surrogate, alpha)
    return s, h - v_threshold * s.detach()
