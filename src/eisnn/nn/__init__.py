"""Modules that hold parameters and call the functional core."""

from .bn import ConvBN, LinearBN
from .ei import DALE_PARAMETERS, EIConv2d, EILayer, EILinear, NotInitializedError, inhibitory_count
from .lif import LIF

__all__ = [
    "DALE_PARAMETERS",
    "ConvBN",
    "EIConv2d",
    "EILayer",
    "EILinear",
    "LIF",
    "LinearBN",
    "NotInitializedError",
    "inhibitory_count",
]
