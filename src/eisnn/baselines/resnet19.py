"""ResNet-19, the usual SNN ResNet of the BN baselines (tdBN, TEBN): 17 convs and 2 dense layers.

Unlike the paper's SEW ResNets, a block adds its shortcut to the current *before* the neuron::

    out = LIF(current2(unit1(x)) + shortcut(x))      unit1 = LIF(current1(x))

where the shortcut is the identity, or a 1x1 current (stride s) when the shape changes. Stem
``3x3 -> 128`` unit; 3 blocks at 128, 3 at 256 (first stride 2), 2 at 512 (first stride 2);
global average pooling; dense 512 -> 256 unit; readout 256 -> classes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.blocks import (
    DEFAULT_NEURON,
    NeuronOptions,
    PerStep,
    SpikingNetwork,
    SpikingUnit,
    per_step,
)
from ..models.kinds import LayerKind

RESNET19_STAGES: tuple[tuple[int, int], ...] = ((128, 3), (256, 3), (512, 2))  # (channels, blocks)
RESNET19_HIDDEN = 256


class PreSpikeResidualBlock(nn.Module):
    """``LIF(current2(unit1(x)) + shortcut(x))``, ``[T, B, C, H, W]`` in and out."""

    def __init__(
        self,
        kind: LayerKind,
        neuron: NeuronOptions,
        dropout: float,
        in_channels: int,
        out_channels: int,
        stride: int,
    ) -> None:
        super().__init__()
        self.unit = SpikingUnit(kind.conv(in_channels, out_channels, 3, stride, 1), neuron, dropout)
        self.current = kind.conv(out_channels, out_channels, 3, 1, 1)
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = (
            kind.conv(in_channels, out_channels, 1, stride, 0) if changes_shape else None
        )
        self.lif = neuron.make()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else per_step(self.shortcut, x)
        return self.dropout(self.lif(per_step(self.current, self.unit(x)) + skip))


class ResNet19(SpikingNetwork):
    """ResNet-19 parameterized by the layer kind; ``width`` scales every channel and the hidden
    dense layer. Any ``image_size`` works (global pooling); it is accepted so that every network
    takes the same options."""

    def __init__(
        self,
        kind: LayerKind,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int | None = None,
        width: float = 1.0,
        dropout: float = 0.0,
        neuron: NeuronOptions = DEFAULT_NEURON,
    ) -> None:
        super().__init__(T)

        def scaled(n: int) -> int:
            return max(1, round(n * width))

        channels = scaled(RESNET19_STAGES[0][0])
        self.stem = SpikingUnit(kind.conv(in_channels, channels, 3, 1, 1), neuron, dropout)
        blocks = []
        for stage, (stage_channels, count) in enumerate(RESNET19_STAGES):
            out = scaled(stage_channels)
            for j in range(count):
                stride = 2 if stage > 0 and j == 0 else 1
                blocks.append(PreSpikeResidualBlock(kind, neuron, dropout, channels, out, stride))
                channels = out
        self.body = nn.Sequential(*blocks)
        hidden = scaled(RESNET19_HIDDEN)
        self.head = nn.Sequential(
            PerStep(nn.AdaptiveAvgPool2d(1)),
            PerStep(nn.Flatten()),
            SpikingUnit(kind.linear(channels, hidden), neuron, dropout),
            PerStep(kind.readout(hidden, num_classes)),
        )
