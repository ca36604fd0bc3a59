"""Modules that hold parameters and call the functional core."""

from .backei import BackEINeuron, HardResetLIF, rect_sign, rect_spike
from .bn import ConvBN, LinearBN
from .dann import DANNConv2d, DANNLayer, DANNLinear
from .ei import DALE_PARAMETERS, EIConv2d, EILayer, EILinear, NotInitializedError, inhibitory_count
from .inhibitory import INHIBITORY_KINDS, InhibitoryPopulation
from .lif import LIF
from .recurrent import EIRecurrent, PlainRecurrent
from .tebn import TEBN, ConvTEBN, LinearTEBN

#: Modules whose output is spikes (firing-rate monitors and diagnostics hook these).
SPIKING_NEURONS: tuple[type, ...] = (LIF, HardResetLIF, BackEINeuron)

__all__ = [
    "SPIKING_NEURONS",
    "DALE_PARAMETERS",
    "TEBN",
    "BackEINeuron",
    "ConvBN",
    "ConvTEBN",
    "DANNConv2d",
    "DANNLayer",
    "DANNLinear",
    "EIConv2d",
    "EILayer",
    "EIRecurrent",
    "INHIBITORY_KINDS",
    "InhibitoryPopulation",
    "EILinear",
    "HardResetLIF",
    "LIF",
    "LinearBN",
    "LinearTEBN",
    "NotInitializedError",
    "PlainRecurrent",
    "inhibitory_count",
    "rect_sign",
    "rect_spike",
]
