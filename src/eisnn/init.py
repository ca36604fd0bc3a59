"""Data-dependent E-I Init over a whole model (SPEC section 3).

One forward pass of the first training batch, under ``no_grad``: a pre-hook on every E-I layer
initializes it from its actual input just before it runs, so each layer sees the activations of
the earlier layers already initialized (layer after layer, in forward order, like LSUV).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch
from torch import nn

from .nn.ei import EILayer, is_initialized

__all__ = [
    "MIN_INHIBITORY",
    "NARROW_LAYERS_TOLERATED",
    "NarrowInhibitionWarning",
    "check_init_input",
    "ei_init",
    "ei_layers",
    "is_initialized",
    "narrow_inhibition",
]

# the failing region of docs/edge.md: more than NARROW_LAYERS_TOLERATED hidden E-I layers with
# fewer than MIN_INHIBITORY I units (ResNet-18 at width 1/8 has five and collapsed on most seeds;
# VGG-8 at width 1/8 has one and trained)
MIN_INHIBITORY = 4
NARROW_LAYERS_TOLERATED = 1


class NarrowInhibitionWarning(UserWarning):
    """An E-I network has more than :data:`NARROW_LAYERS_TOLERATED` hidden layers with fewer
    than :data:`MIN_INHIBITORY` I units."""


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
    narrow = narrow_inhibition(model)
    if narrow:
        warnings.warn(narrow, NarrowInhibitionWarning, stacklevel=3)  # past torch.no_grad
    return model


def narrow_inhibition(model: nn.Module) -> str | None:
    """A one-line warning when more than :data:`NARROW_LAYERS_TOLERATED` hidden E-I layers of
    ``model`` have fewer than :data:`MIN_INHIBITORY` inhibitory units (``n_I = n_E //
    ei_ratio``), else None.

    With so few I units, the divisive current ``W_EI @ (g_I * s_I)`` at a position where only a
    few inputs are active averages a handful of exponential weights and can be orders of
    magnitude below its typical value; ``I_int`` and its gradient (``1 / div**2``) then blow up,
    and through several such layers the gradient explodes (docs/edge.md).
    """
    narrow = [
        (name, layer.n_inhibitory)
        for name, layer in ei_layers(model)
        if not layer.readout and layer.n_inhibitory < MIN_INHIBITORY
    ]
    if len(narrow) <= NARROW_LAYERS_TOLERATED:
        return None
    fewest = min(n for _, n in narrow)
    first = narrow[0][0]
    return (
        f"ei_init: {len(narrow)} E-I layer(s) have fewer than {MIN_INHIBITORY} inhibitory units "
        f"(fewest {fewest}, first '{first}'); E-I training of networks like this often "
        "collapses (docs/edge.md): widen the network or lower ei_ratio"
    )
