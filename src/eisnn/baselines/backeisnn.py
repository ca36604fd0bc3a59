"""The BackEISNN 5-layer CIFAR network (Zhao et al., Neural Networks 2022); no normalization.

Three units ``conv3x3 -> BackEI neuron -> dropout -> 2x2 average pooling`` (128, 256, 512
channels), flatten, dense -> 1024 hard-reset LIF units -> dropout, dense -> classes hard-reset LIF
units. The output is the firing rate of the last layer (spikes averaged over ``T``), in
``[0, 1]``: train it with the ``mse_rates`` loss (``eisnn.losses``), as the original does.
"""

from __future__ import annotations

from torch import nn

from ..models.blocks import PerStep, SpikingNetwork, SpikingUnit
from .backei import BackEINeuron, HardResetLIF

BACKEI_CHANNELS: tuple[int, ...] = (128, 256, 512)
BACKEI_HIDDEN = 1024


class BackEISNN(SpikingNetwork):
    """``width`` scales every channel count and the hidden dense layer (at least 1 unit each)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int = 32,
        width: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(T)
        if image_size >> len(BACKEI_CHANNELS) < 1:
            raise ValueError(
                f"image_size {image_size} is too small for {len(BACKEI_CHANNELS)} poolings of 2x2"
            )

        def scaled(n: int) -> int:
            return max(1, round(n * width))

        units: list[nn.Module] = []
        channels, size = in_channels, image_size
        for planned in BACKEI_CHANNELS:
            out = scaled(planned)
            units += [
                SpikingUnit(nn.Conv2d(channels, out, 3, padding=1), BackEINeuron(out), dropout),
                PerStep(nn.AvgPool2d(2)),
            ]
            channels, size = out, size // 2
        self.stem = units[0]
        self.body = nn.Sequential(*units[1:])
        hidden = scaled(BACKEI_HIDDEN)
        self.head = nn.Sequential(
            PerStep(nn.Flatten()),
            SpikingUnit(nn.Linear(channels * size * size, hidden), HardResetLIF(), dropout),
            SpikingUnit(nn.Linear(hidden, num_classes), HardResetLIF()),
        )
