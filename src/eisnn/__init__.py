"""eisnn: deep normalization-free spiking neural networks with excitatory-inhibitory circuits.

Importing the package registers the comparison systems (``eisnn.baselines``) in the model
registry, next to the paper's networks.
"""

from . import baselines, dale
from .init import ei_init, is_initialized

__all__ = ["baselines", "dale", "ei_init", "is_initialized"]
__version__ = "0.1.0"
