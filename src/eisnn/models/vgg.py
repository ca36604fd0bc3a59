"""VGG-n spiking networks (SPEC section 6): 3x3 convs, 2x2 average pooling, one readout layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nn import is_initialized
from .blocks import DEFAULT_NEURON, NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind

POOL = "P"


def parse_plan(text: str) -> tuple[int | str, ...]:
    """A VGG plan from SPEC's notation: channel counts, ``P`` for pooling, ``CxN`` for ``N``
    convs of ``C`` channels (``"64 P 128x2 P"`` -> ``(64, "P", 128, 128, "P")``)."""
    plan: list[int | str] = []
    for item in text.split():
        if item == POOL:
            plan.append(POOL)
        else:
            channels, _, count = item.partition("x")
            plan.extend([int(channels)] * int(count or 1))
    return tuple(plan)


VGG_PLANS: dict[int, tuple[int | str, ...]] = {
    8: parse_plan("64 P 128 P 256 P 512 P 512 P"),
    11: parse_plan("64 P 128 P 256x2 P 512x2 P 512x2 P"),
    16: parse_plan("64x2 P 128x2 P 256x3 P 512x3 P 512x3 P"),
    19: parse_plan("64x2 P 128x2 P 256x4 P 512x4 P 512x4 P"),
}


class VGG(SpikingNetwork):
    """``plan`` lists output channels of each 3x3 conv unit and ``"P"`` for pooling; then flatten
    and the readout (the paper's light classifier). ``width`` scales every channel count.

    ``event_frames``: the network is meant for event frames ``[B, T, C, H, W]``. It changes no
    computation (every network takes both input forms); it is the buffer ``event_frames`` of the
    state dict, which selects the reference's event-frame key layout in ``eisnn.compat``. It is
    also set by an E-I Init from frames (the forward of an uninitialized E-I stem).
    """

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
        neuron: NeuronOptions = DEFAULT_NEURON,
        event_frames: bool = False,
    ) -> None:
        super().__init__(T)
        self.register_buffer("event_frames", torch.tensor(bool(event_frames)))
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
            raise ValueError(
                f"image_size {image_size} is too small for {plan.count(POOL)} poolings of 2x2"
            )
        self.stem = units[0]
        self.body = nn.Sequential(*units[1:])
        self.head = nn.Sequential(
            PerStep(nn.Flatten()), PerStep(kind.readout(channels * size * size, num_classes))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from_frames = x.dim() == self.static_dims + 1 and not is_initialized(self.stem)
        out = super().forward(x)
        if from_frames:  # E-I Init from event frames: an event-frame network
            self.event_frames.fill_(True)
        return out

    def _load_from_state_dict(  # type: ignore[override]
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """A state dict from before ``event_frames`` existed keeps the value this network was
        built with (static input unless built with ``event_frames=True``)."""
        state_dict.setdefault(prefix + "event_frames", self.event_frames.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
