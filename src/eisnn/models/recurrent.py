"""Recurrent spiking networks for sequences: per step, flatten the input, recurrent spiking layers,
readout; logits are the readout averaged over time (as every network of eisnn).

``ei_rnn``: ``EIRecurrent`` layers (excitatory recurrence, lateral inhibition, E-I Init, Dale's law)
and an E-I readout. ``plain_rnn``: ``PlainRecurrent`` layers (no E-I) and a linear readout.
Input ``[B, T, C, H, W]`` (a sequence: rows of a digit, event frames) or ``[B, C, H, W]``
(static, repeated over ``T``).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DEFAULT_NEURON, NeuronOptions, PerStep, SpikingNetwork
from .kinds import LayerKind

# the layer kinds with a recurrent layer (``LayerKind.recurrent``)
RECURRENT_KINDS: tuple[str, ...] = ("ei", "plain")


def recurrent_layer(
    kind: LayerKind, in_features: int, hidden: int, neuron: NeuronOptions
) -> nn.Module:
    """The recurrent spiking layer of ``kind`` (a kind with a ``recurrent`` constructor)."""
    if kind.recurrent is None:
        raise ValueError(
            f"recurrent networks come in kinds {list(RECURRENT_KINDS)}, got {kind.name!r}"
        )
    return kind.recurrent(in_features, hidden, neuron)


class RecurrentUnit(nn.Module):
    """Flatten each step, one recurrent spiking layer, dropout:
    ``[T, B, ...] -> [T, B, hidden]``."""

    def __init__(self, layer: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.layer = layer
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.layer(x.flatten(2)))

    def forward_static(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Static input ``[B, ...]`` repeated over ``T`` (recurrence makes every step differ)."""
        return self(x.unsqueeze(0).expand(T, *x.shape))


class RecurrentSNN(SpikingNetwork):
    """``hidden`` recurrent spiking layers on ``in_channels * image_size**2`` features per step."""

    def __init__(
        self,
        kind: LayerKind,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int = 32,
        hidden: tuple[int, ...] = (128,),
        dropout: float = 0.0,
        neuron: NeuronOptions = DEFAULT_NEURON,
    ) -> None:
        super().__init__(T)
        if not hidden:
            raise ValueError("RecurrentSNN needs at least one hidden layer")
        sizes = [in_channels * image_size * image_size, *hidden]
        units = [
            RecurrentUnit(recurrent_layer(kind, sizes[i], sizes[i + 1], neuron), dropout)
            for i in range(len(hidden))
        ]
        self.stem = units[0]
        self.body = nn.Sequential(*units[1:])
        self.head = PerStep(kind.readout(hidden[-1], num_classes))
