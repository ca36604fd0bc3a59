"""SEW ResNets (SPEC section 6): spikes of a block plus its shortcut, no max-pool, E-I readout.

A basic block is ``unit(3x3, stride s) -> unit(3x3)``, a bottleneck ``unit(1x1) -> unit(3x3, s)
-> unit(1x1, 4x)``; its output is ``spikes + shortcut(x)``, where a shortcut that changes shape
is ``unit(1x1, stride s)`` and otherwise the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DEFAULT_NEURON, NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind

RESNET_PLANS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


class SEWBlock(nn.Module):
    """Units in sequence, their spikes added to the (possibly projected) input."""

    def __init__(self, units: list[SpikingUnit], shortcut: SpikingUnit | None) -> None:
        super().__init__()
        self.units = nn.Sequential(*units)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.units(x) + self.shortcut(x)


def make_block(
    style: str,
    kind: LayerKind,
    neuron: NeuronOptions,
    dropout: float,
    in_ch: int,
    width: int,
    stride: int,
) -> SEWBlock:
    """One basic or bottleneck block taking ``in_ch`` channels to ``width * expansion``."""
    out_ch = width * EXPANSION[style]

    def unit(cin: int, cout: int, k: int, s: int) -> SpikingUnit:
        return SpikingUnit(kind.conv(cin, cout, k, s, k // 2), neuron, dropout)

    if style == "basic":
        units = [unit(in_ch, width, 3, stride), unit(width, width, 3, 1)]
    else:
        units = [unit(in_ch, width, 1, 1), unit(width, width, 3, stride), unit(width, out_ch, 1, 1)]
    shortcut = unit(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else None
    return SEWBlock(units, shortcut)


class ResNet(SpikingNetwork):
    """Stem ``unit(3x3, stride 1)``, four stages of blocks (widths 64/128/256/512 times ``width``),
    global average pooling, readout. Any ``image_size`` works (global pooling); it is accepted
    only so that every network takes the same options."""

    def __init__(
        self,
        depth: int,
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
        style, counts = RESNET_PLANS[depth]
        widths = [max(1, round(w * width)) for w in (64, 128, 256, 512)]
        self.stem = SpikingUnit(kind.conv(in_channels, widths[0], 3, 1, 1), neuron, dropout)
        stages, channels = [], widths[0]
        for stage, (count, w) in enumerate(zip(counts, widths)):
            blocks = []
            for j in range(count):
                stride = 2 if stage > 0 and j == 0 else 1
                blocks.append(make_block(style, kind, neuron, dropout, channels, w, stride))
                channels = w * EXPANSION[style]
            stages.append(nn.Sequential(*blocks))
        self.body = nn.Sequential(*stages)
        self.head = nn.Sequential(
            PerStep(nn.AdaptiveAvgPool2d(1)),
            PerStep(nn.Flatten()),
            PerStep(kind.readout(channels, num_classes)),
        )
