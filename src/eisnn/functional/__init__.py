"""Pure tensor functions of eisnn: the LIF neuron, surrogate gradients and the E-I integration."""

from .ei import STABILIZATIONS, adaptive_stabilize, divide_grad, ei_integrate_eager, mix_channels, stabilize
from .lif import lif_multistep_eager
from .surrogate import SURROGATES, spike, surrogate_derivative

ei_integrate = ei_integrate_eager
lif_multistep = lif_multistep_eager

__all__ = [
    "STABILIZATIONS",
    "SURROGATES",
    "adaptive_stabilize",
    "divide_grad",
    "ei_integrate",
    "ei_integrate_eager",
    "lif_multistep",
    "lif_multistep_eager",
    "mix_channels",
    "spike",
    "stabilize",
    "surrogate_derivative",
]
