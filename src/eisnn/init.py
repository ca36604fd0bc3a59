"""Data-dependent E-I Init over a whole model (SPEC section 3).

One forward pass of the first training batch, under ``no_grad``: a pre-hook on every E-I layer
initializes it from its actual input just before it runs, so each layer sees the activations of
the earlier layers already initialized (layer after layer, in forward order, like LSUV).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .nn.ei import EILayer, is_initialized

__all__ = ["check_init_input", "ei_init", "ei_layers", "is_initialized"]


def ei_layers(model: nn.Module) -> Iterator[tuple[str, EILayer]]:
    """``(name, layer)`` for every E-I layer of ``model``, in registration order."""
    for name, module in model.named_modules():
        if isinstance(module, EILayer):
            yield name, module


def check_init_input(name: str, x: torch.Tensor) -> None:
    """E-I Init needs a non-negative input with a positive mean; raise naming the layer
    otherwise."""
    if not torch.isfinite(x).all():
        raise ValueError(f"ei_init: layer '{name}' received non-finite values in its input")
    low = float(x.min())
    if low < 0:
        raise ValueError(
            f"ei_init: layer '{name}' received negative input (min {low:.4g}); "
            "E-I layers need non-negative inputs "
            "(spikes, or intensities in [0, 1] without mean/std normalization)"
        )
    if float(x.mean()) <= 0:
        raise ValueError(
            f"ei_init: layer '{name}' received an all-zero input; "
            "E-I Init needs a batch with activity"
        )


@torch.no_grad()
def ei_init(
    model: nn.Module, batch: torch.Tensor, generator: torch.Generator | None = None
) -> nn.Module:
    """Initialize every not-yet-initialized E-I layer of ``model`` from ``batch`` (a model input).

    Layers already initialized (loaded from a checkpoint, or built with ``init="standard"``) are
    left untouched. Returns ``model``.
    """

    def make_hook(name: str):
        def hook(layer: EILayer, args: tuple[torch.Tensor, ...]) -> None:
            if not layer._initialized:
                check_init_input(name, args[0])
                layer.ei_init_from(args[0], generator)

        return hook

    handles = [layer.register_forward_pre_hook(make_hook(name)) for name, layer in ei_layers(model)]
    try:
        model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return model
