"""Surrogate derivatives of the Heaviside spike function.

The forward pass is the step ``S = heaviside(u)`` (1 where ``u >= 0``); the backward
pass replaces its zero-almost-everywhere derivative by a smooth one:

- ``sigmoid``: ``dS/du = a * sig(a u) * (1 - sig(a u))`` (default ``a = 4``);
- ``arctan``:  ``dS/du = (a / 2) / (1 + (pi / 2 * a * u) ** 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SurrogateFn = Callable[[torch.Tensor, float], torch.Tensor]


def sigmoid_derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """``a * sig(a u) * (1 - sig(a u))``."""
    sg = torch.sigmoid(alpha * u)
    return alpha * sg * (1.0 - sg)


def arctan_derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(a / 2) / (1 + (pi / 2 * a * u) ** 2)``."""
    return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * u) ** 2)


SURROGATES: dict[str, SurrogateFn] = {
    "sigmoid": sigmoid_derivative,
    "arctan": arctan_derivative,
}


def surrogate_derivative(name: str) -> SurrogateFn:
    """Return the derivative function of a surrogate by name."""
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}"
        ) from None


class SpikeFunction(torch.autograd.Function):
    """Heaviside step forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, surrogate: str, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        ctx.alpha = alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad_spike * surrogate_derivative(ctx.surrogate)(u, ctx.alpha), None, None


def spike(u: torch.Tensor, surrogate: str = "sigmoid", alpha: float = 4.0) -> torch.Tensor:
    """``heaviside(u)`` with the named surrogate gradient."""
    return SpikeFunction.apply(u, surrogate, alpha)
