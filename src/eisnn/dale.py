"""Dale's law: excitatory and inhibitory weights and gains stay non-negative (SPEC section 4).

Two policies, chosen per layer (``dale=`` of the E-I layers, the ``dale`` config key):

- ``clamp`` (the paper, default): projected gradient descent. After every optimizer step, every
  constrained parameter (``W_EE, W_IE, W_EI, g_I, g_E`` of each E-I layer) is clamped to ``>= 0``;
  ``b_E`` is free.
- ``reparam``: non-negative by construction. Each constrained tensor is ``W = softplus(R)`` of a
  free parameter ``R`` (``torch.nn.utils.parametrize``; state-dict key
  ``<layer>.parametrizations.<name>.original``). Setting ``W`` (init) stores ``R = softplus^-1(W)``.
  The projection leaves such tensors alone; weight decay acts on ``R``.

A module declares its constrained tensors by name in a ``dale_parameters`` tuple attribute
(E-I layers: ``DALE_PARAMETERS``; the DANN layers of the baselines declare theirs).
The ``reparam`` machinery lives beside the layers (``eisnn.nn.dale_parametrization``); this
module applies the policy to a whole model and re-exports those names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .nn.dale_parametrization import (
    POLICIES,
    Softplus,
    assign_,
    check_policy,
    is_reparametrized,
    reparametrize_,
)

__all__ = [
    "POLICIES",
    "Softplus",
    "assign_",
    "attach",
    "check_policy",
    "constrained_parameters",
    "is_reparametrized",
    "project_",
    "reparametrize_",
    "split_parameters",
]


def constrained_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the ``clamp`` policy projects: those each module names in ``dale_parameters``
    and has not reparametrized (reparametrized ones are non-negative by construction)."""
    return [
        getattr(module, name)
        for module in model.modules()
        for name in getattr(module, "dale_parameters", ())
        if not is_reparametrized(module, name)
    ]


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(constrained, free)``: the paper's grouping of a model's parameters (the free parameters
    behind a ``reparam`` tensor count as free)."""
    constrained = constrained_parameters(model)
    ids = {id(p) for p in constrained}
    free = [p for p in model.parameters() if id(p) not in ids]
    return constrained, free


@torch.no_grad()
def project_(model: nn.Module) -> None:
    """Clamp every ``clamp``-policy Dale-constrained parameter of ``model`` to ``>= 0`` in place."""
    params = constrained_parameters(model)
    if params:
        torch._foreach_clamp_min_(params, 0.0)


def attach(optimizer: torch.optim.Optimizer, model: nn.Module) -> RemovableHandle:
    """Run ``project_(model)`` after every ``optimizer.step()``; returns the hook's handle."""

    def after_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        project_(model)

    return optimizer.register_step_post_hook(after_step)
