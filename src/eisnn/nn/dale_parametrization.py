"""Dale's law by construction, beside the layers that use it (SPEC section 4).

The policy of each E-I layer (``dale=``) is one of ``POLICIES``:

- ``clamp`` (the paper, default): the layer's tensors are plain parameters; ``eisnn.dale``
  projects them onto ``>= 0`` after every optimizer step.
- ``reparam``: each constrained tensor is ``W = softplus(R)`` of a free parameter ``R``
  (``torch.nn.utils.parametrize``; state-dict key ``<layer>.parametrizations.<name>.original``).
  Setting ``W`` (init) stores ``R = softplus^-1(W)``.

A module declares its constrained tensors by name in a ``dale_parameters`` tuple attribute.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

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
    """Make each named parameter of ``module`` ``softplus`` of a free parameter, keeping its
    value."""
    for name in names:
        parametrize.register_parametrization(module, name, Softplus())


def is_reparametrized(module: nn.Module, name: str) -> bool:
    """True when ``module.<name>`` is computed from a free parameter (the ``reparam`` policy)."""
    return parametrize.is_parametrized(module, name)


@torch.no_grad()
def assign_(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Set the effective value of ``module.<name>`` (under ``reparam``: its free parameter's
    inverse)."""
    if is_reparametrized(module, name):
        setattr(module, name, value.clone())
    else:
        getattr(module, name).copy_(value)
