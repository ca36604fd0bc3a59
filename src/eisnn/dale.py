"""Dale's law: excitatory and inhibitory weights and gains stay non-negative (SPEC section 4).

Projected gradient descent: after every optimizer step, every constrained parameter
(``W_EE, W_IE, W_EI, g_I, g_E`` of each E-I layer) is clamped to ``>= 0``; ``b_E`` is free.
A module declares its constrained parameters by name in a ``dale_parameters`` tuple attribute
(E-I layers: ``DALE_PARAMETERS``; the DANN layers of the baselines declare theirs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def constrained_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The Dale-constrained parameters of ``model``: those each module names in ``dale_parameters``."""
    return [getattr(module, name) for module in model.modules() for name in getattr(module, "dale_parameters", ())]


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(constrained, free)``: the paper's grouping of a model's parameters."""
    constrained = constrained_parameters(model)
    ids = {id(p) for p in constrained}
    free = [p for p in model.parameters() if id(p) not in ids]
    return constrained, free


@torch.no_grad()
def project_(model: nn.Module) -> None:
    """Clamp every Dale-constrained parameter of ``model`` to ``>= 0`` in place."""
    params = constrained_parameters(model)
    if params:
        torch._foreach_clamp_min_(params, 0.0)


def attach(optimizer: torch.optim.Optimizer, model: nn.Module) -> RemovableHandle:
    """Run ``project_(model)`` after every ``optimizer.step()``; returns the hook's handle."""

    def after_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        project_(model)

    return optimizer.register_step_post_hook(after_step)
