"""Pure tensor functions of eisnn: the LIF neuron, surrogate gradients and the E-I integration.

``ei_integrate`` and ``lif_multistep`` are the operations layers call; ``tiers`` chooses which
implementation (eager reference, fused node, C kernel) computes each call.
"""

from .ei import (
    STABILIZATIONS,
    divide_grad,
    ei_integrate_eager,
    lateral_inhibition,
    mix_channels,
    per_channel,
    split_currents,
    stabilize,
    stack_weights,
)
from .ei_fused import ei_integrate_fused, fused_supported
from .lif import lif_multistep_eager, lif_multistep_fused, lif_step
from .precision import autocast_active, ei_integrate_balanced, folded_weight
from .surrogate import SURROGATES, spike, surrogate_derivative
from .tiers import TIERS, ei_integrate, lif_multistep, use_tier

__all__ = [
    "STABILIZATIONS",
    "SURROGATES",
    "TIERS",
    "autocast_active",
    "divide_grad",
    "ei_integrate",
    "ei_integrate_eager",
    "ei_integrate_balanced",
    "ei_integrate_fused",
    "folded_weight",
    "fused_supported",
    "lateral_inhibition",
    "lif_multistep",
    "lif_multistep_eager",
    "lif_multistep_fused",
    "lif_step",
    "mix_channels",
    "per_channel",
    "spike",
    "split_currents",
    "stabilize",
    "stack_weights",
    "surrogate_derivative",
    "use_tier",
]
