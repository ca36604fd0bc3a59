"""A guard for operations whose backward is a fused first-order computation.

Such a backward (``out=`` and in-place ops, C kernels) returns gradients without a graph. Asked
for one (``create_graph=True``, as for a second derivative or a gradient penalty), it could
only return gradients whose own derivative is silently wrong or missing; torch's
``once_differentiable`` still does when the incoming gradient carries no graph. The guard
raises at once instead, naming the node and its twice-differentiable reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

Backward = Callable[..., Any]


def first_order_only(node: str, reference: str) -> Callable[[Backward], Backward]:
    """Decorate the ``backward(ctx, *grads)`` of the operation ``node`` (a custom operation's
    registered autograd): it raises a ``RuntimeError`` when run with grad mode on
    (``create_graph=True``); ``reference`` names the eager function of :mod:`eisnn.functional`
    that computes the same maths and can be differentiated twice."""

    def decorate(backward: Backward) -> Backward:
        @functools.wraps(backward)
        def guarded(ctx: Any, *grad_outputs: torch.Tensor) -> Any:
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"{node} cannot be differentiated twice (create_graph=True): "
                    "its fused backward gives first-order gradients only; "
                    "under eisnn.functional.use_tier('eager') the same maths runs "
                    f"as eisnn.functional.{reference}, which can be"
                )
            return backward(ctx, *grad_outputs)

        return guarded

    return decorate
