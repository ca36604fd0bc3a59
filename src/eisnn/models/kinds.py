"""Layer kinds: what a network's weight layers are made of, so that each network is defined once.

- ``ei``: E-I layers (``EIConv2d``/``EILinear``) and an E-I readout; no normalization.
- ``bn``: the BN-SNN baseline, ``conv (bias-free) -> BatchNorm`` and a plain linear readout.
- ``tebn``: the TEBN baseline, ``conv (bias-free) -> TEBN`` (BatchNorm with temporal statistics and
  a learnable scale per time step) and a plain linear readout; needs ``time_steps``.
- ``plain``: neither: bias-free conv/linear with Kaiming init, plain linear readout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..nn import ConvBN, ConvTEBN, EIConv2d, EILinear, LinearBN, LinearTEBN

KIND_NAMES: tuple[str, ...] = ("ei", "bn", "tebn", "plain")
EI_OPTIONS: tuple[str, ...] = ("ei_ratio", "stabilization", "epsilon", "ste", "scale_w_ei_grad", "init",
                               "n_inhibitory", "inhibitory", "tau_i", "v_threshold_i", "surrogate_i", "alpha_i", "dale")
# hidden layers only: the readout keeps the ratio's I count and the paper's ReLU I units (its output is a current)
HIDDEN_ONLY_OPTIONS: tuple[str, ...] = ("n_inhibitory", "inhibitory", "tau_i", "v_threshold_i", "surrogate_i", "alpha_i")


def _kaiming(layer: nn.Module) -> nn.Module:
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return layer


@dataclass(frozen=True)
class LayerKind:
    """Factory of a network's weight layers. ``ei_options`` go to every E-I layer; ``time_steps``
    (the network's ``T``) sizes the per-step scales of TEBN layers."""

    name: str
    ei_options: dict[str, Any] = field(default_factory=dict)
    time_steps: int | None = None

    def __post_init__(self) -> None:
        if self.name not in KIND_NAMES:
            raise ValueError(f"unknown layer kind {self.name!r}; choose one of {list(KIND_NAMES)}")
        unknown = set(self.ei_options) - set(EI_OPTIONS)
        if unknown:
            raise ValueError(f"unknown E-I options {sorted(unknown)}; allowed: {list(EI_OPTIONS)}")
        if self.name == "tebn" and (self.time_steps is None or self.time_steps < 1):
            raise ValueError(f"the tebn layer kind needs time_steps >= 1, got {self.time_steps}")

    def hidden_ei_options(self) -> dict[str, Any]:
        """Options of a hidden E-I layer: ``ei_options`` plus ``time_steps`` (spiking I units need ``T``)."""
        return {**self.ei_options, "time_steps": self.time_steps}

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> nn.Module:
        """A hidden convolution producing the input current of a spiking layer."""
        if self.name == "ei":
            return EIConv2d(in_channels, out_channels, kernel_size, stride, padding, **self.hidden_ei_options())
        if self.name == "bn":
            return ConvBN(in_channels, out_channels, kernel_size, stride, padding)
        if self.name == "tebn":
            return ConvTEBN(in_channels, out_channels, kernel_size, stride, padding, T=self.time_steps)
        return _kaiming(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False))

    def linear(self, in_features: int, out_features: int) -> nn.Module:
        """A hidden fully connected layer producing the input current of a spiking layer."""
        if self.name == "ei":
            return EILinear(in_features, out_features, **self.hidden_ei_options())
        if self.name == "bn":
            return LinearBN(in_features, out_features)
        if self.name == "tebn":
            return LinearTEBN(in_features, out_features, T=self.time_steps)
        return _kaiming(nn.Linear(in_features, out_features, bias=False))

    def readout(self, in_features: int, num_classes: int) -> nn.Module:
        """The last layer, whose output averaged over time is the logits."""
        if self.name == "ei":
            options = {k: v for k, v in self.ei_options.items() if k not in HIDDEN_ONLY_OPTIONS}
            return EILinear(in_features, num_classes, readout=True, **options)
        return nn.Linear(in_features, num_classes)
