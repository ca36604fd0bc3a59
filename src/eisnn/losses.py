"""Training losses selectable by name (config key ``loss``): ``output [B, classes]``,
``target [B]``.

- ``cross_entropy``: softmax cross-entropy on the time-averaged logits (the paper's loss).
- ``mse_rates``: mean squared error between the output firing rates (spikes averaged over time,
  in ``[0, 1]``) and the one-hot label, averaged over batch and classes (BackEISNN's loss).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_b -log softmax(output_b)[target_b]``."""
    return F.cross_entropy(output, target)


def mse_rates(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_{b,c} (output_{b,c} - onehot(target)_{b,c})^2``."""
    return F.mse_loss(output, F.one_hot(target, output.shape[1]).to(output.dtype))


LOSSES: dict[str, Loss] = {"cross_entropy": cross_entropy, "mse_rates": mse_rates}


def get_loss(name: str) -> Loss:
    """The loss function called ``name``."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
