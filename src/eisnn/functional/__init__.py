"""Pure tensor functions of eisnn: the LIF neuron, surrogate gradients and the E-I integration."""

from .ei import STABILIZATIONS, adaptive_stabilize, divide_grad, ei_integrate_eager, mix_channels, stabilize
from .ei_fused import ei_integrate_currents, ei_integrate_fused, fused_supported
from .lif import lif_multistep_eager, lif_multistep_fused
from .surrogate import SURROGATES, spike, surrogate_derivative

# The fused implementations are the default; the eager ones stay as the reference.
ei_integrate = ei_integrate_fused
lif_multistep = lif_multistep_fused

__all__ = [
    "STABILIZATIONS",
    "SURROGATES",
    "adaptive_stabilize",
    "divide_grad",
    "ei_integrate",
    "ei_integrate_currents",
    "ei_integrate_eager",
    "ei_integrate_fused",
    "fused_supported",
    "lif_multistep",
    "lif_multistep_eager",
    "lif_multistep_fused",
    "mix_channels",
    "spike",
    "stabilize",
    "surrogate_derivative",
]
