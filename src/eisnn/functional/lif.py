"""Multi-step leaky integrate-and-fire neuron (SPEC section 5).

For an input current ``X`` of shape ``[T, ...]`` and a membrane starting at 0::

    H[t] = V[t-1] - V[t-1] / tau + X[t]      (the input is not decayed)
    S[t] = heaviside(H[t] - V_th)            (1 when H == V_th)
    V[t] = H[t] - V_th * S[t]                (soft reset, S detached from the graph)

The backward pass uses the surrogate derivative of the step (``functional.surrogate``).
"""

from __future__ import annotations

import torch

from .surrogate import spike


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
