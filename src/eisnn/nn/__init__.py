"""Modules that hold parameters and call the functional core: the paper's E-I layers, the LIF
neuron, and the blocks of its BN-SNN twin. The comparison systems are in ``eisnn.baselines``."""

from .bn import ConvBN, LinearBN, kaiming_fan_out_, plain_conv, plain_linear
from .ei import DALE_PARAMETERS, EIConv2d, EILayer, EILinear, NotInitializedError, is_initialized
from .ei_options import EIOptions, inhibitory_count
from .inhibitory import INHIBITORY_KINDS, InhibitoryPopulation
from .lif import LIF, is_spiking_neuron
from .recurrent import EIRecurrent, PlainRecurrent

__all__ = [
    "DALE_PARAMETERS",
    "INHIBITORY_KINDS",
    "LIF",
    "ConvBN",
    "EIConv2d",
    "EILayer",
    "EILinear",
    "EIOptions",
    "EIRecurrent",
    "InhibitoryPopulation",
    "LinearBN",
    "NotInitializedError",
    "PlainRecurrent",
    "inhibitory_count",
    "is_initialized",
    "is_spiking_neuron",
    "kaiming_fan_out_",
    "plain_conv",
    "plain_linear",
]
