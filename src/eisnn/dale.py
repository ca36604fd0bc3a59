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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.hooks import RemovableHandle

POLICIES: tuple[str, ...] = ("clamp", "reparam")
# smallest effective value the inverse accepts: softplus^-1(0) is -inf
_FLOOR = 1e-12


def check_policy(policy: str) -> str:
    """``policy`` if it is one of ``POLICIES``, else a one-line ``ValueError``."""
    if policy not in POLICIES:
        raise ValueError(f"dale must be one of {list(POLICIES)}, got {policy!r}")
    return policy


class Softplus(nn.Module):
    """The ``reparam`` map ``W = softplus(R) = log(1 + exp(R)) > 0``, with its inverse
    ``R = W + log(-expm1(-W))`` (``W`` floored at ``1e-12``)."""

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        value = value.clamp_min(_FLOOR)
        return value + torch.log(-torch.expm1(-value))


def reparametrize_(module: nn.Module, names: Iterable[str]) -> None:
    """Make each named parameter of ``module`` ``softplus`` of a free parameter, keeping its value."""
    for name in names:
        parametrize.register_parametrization(module, name, Softplus())


def is_reparametrized(module: nn.Module, name: str) -> bool:
    return parametrize.is_parametrized(module, name)


@torch.no_grad()
def assign_(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Set the effective value of ``module.<name>`` (under ``reparam``: its free parameter's inverse)."""
    if is_reparametrized(module, name):
        setattr(module, name, value.clone())
    else:
        getattr(module, name).copy_(value)


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
