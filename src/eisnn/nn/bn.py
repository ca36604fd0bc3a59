"""Building blocks of the BN-SNN twin: bias-free conv/linear (the plain twin's layers) followed
by BatchNorm.

BatchNorm runs on the merged ``[T*B, C, ...]`` tensor: statistics per channel over time,
batch and space; running statistics at inference. Kaiming normal (fan_out) init.
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn

LayerT = TypeVar("LayerT", nn.Conv2d, nn.Linear)


def kaiming_fan_out_(layer: LayerT) -> LayerT:
    """Kaiming normal init of ``layer.weight`` for ReLU-like units over the fan-out (in place):
    ``W ~ N(0, 2 / fan_out)``. Returns ``layer``."""
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return layer


def plain_conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> nn.Conv2d:
    """A bias-free ``Conv2d`` with Kaiming normal (fan_out) init."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
    return kaiming_fan_out_(conv)


def plain_linear(in_features: int, out_features: int) -> nn.Linear:
    """A bias-free ``Linear`` with Kaiming normal (fan_out) init."""
    return kaiming_fan_out_(nn.Linear(in_features, out_features, bias=False))


class ConvBN(nn.Sequential):
    """``plain_conv -> BatchNorm2d``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        conv = plain_conv(in_channels, out_channels, kernel_size, stride, padding)
        super().__init__(conv, nn.BatchNorm2d(out_channels))


class LinearBN(nn.Sequential):
    """``plain_linear -> BatchNorm1d``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(plain_linear(in_features, out_features), nn.BatchNorm1d(out_features))
