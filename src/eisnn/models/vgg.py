"""VGG-n spiking networks (SPEC section 6): 3x3 convs, 2x2 average pooling, one readout layer."""

from __future__ import annotations

from torch import nn

from .blocks import NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind

POOL = "P"
VGG_PLANS: dict[int, tuple[int | str, ...]] = {
    8: (64, POOL, 128, POOL, 256, POOL, 512, POOL, 512, POOL),
    11: (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    16: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    19: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL),
}


class VGG(SpikingNetwork):
    """``plan`` lists output channels of each 3x3 conv unit and ``"P"`` for pooling; then flatten and
    the readout (the paper's light classifier). ``width`` scales every channel count."""

    def __init__(
        self,
        plan: tuple[int | str, ...],
        kind: LayerKind,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int = 32,
        width: float = 1.0,
        dropout: float = 0.0,
        neuron: NeuronOptions = NeuronOptions(),
    ) -> None:
        super().__init__(T)
        self.plan = plan
        units: list[nn.Module] = []
        channels, size = in_channels, image_size
        for item in plan:
            if item == POOL:
                units.append(PerStep(nn.AvgPool2d(2, 2)))
                size //= 2
            else:
                out = max(1, round(int(item) * width))
                units.append(SpikingUnit(kind.conv(channels, out, 3, 1, 1), neuron, dropout))
                channels = out
        if size < 1:
            raise ValueError(f"image_size {image_size} is too small for {plan.count(POOL)} poolings of 2x2")
        self.stem = units[0]
        self.body = nn.Sequential(*units[1:])
        self.head = nn.Sequential(PerStep(nn.Flatten()), PerStep(kind.readout(channels * size * size, num_classes)))
