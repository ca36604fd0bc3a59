"""A fully connected spiking network: flatten, hidden spiking layers, readout."""

from __future__ import annotations

from torch import nn

from .blocks import DEFAULT_NEURON, NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind


class MLP(SpikingNetwork):
    """Inputs ``[B, C, H, W]`` (or frames ``[B, T, C, H, W]``) flattened to ``C*H*W`` features."""

    def __init__(
        self,
        kind: LayerKind,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int = 32,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0,
        neuron: NeuronOptions = DEFAULT_NEURON,
    ) -> None:
        super().__init__(T)
        if not hidden:
            raise ValueError("MLP needs at least one hidden layer")
        sizes = [in_channels * image_size * image_size, *hidden]
        units = [
            SpikingUnit(
                nn.Sequential(nn.Flatten(), kind.linear(sizes[0], sizes[1]))
                if i == 0
                else kind.linear(sizes[i], sizes[i + 1]),
                neuron,
                dropout,
            )
            for i in range(len(hidden))
        ]
        self.stem = units[0]
        self.body = nn.Sequential(*units[1:])
        self.head = PerStep(kind.readout(hidden[-1], num_classes))
