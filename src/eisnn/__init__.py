"""eisnn: deep normalization-free spiking neural networks with excitatory-inhibitory circuits."""

from . import dale
from .init import ei_init, is_initialized

__all__ = ["dale", "ei_init", "is_initialized"]
__version__ = "0.1.0"
