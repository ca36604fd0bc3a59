"""Temporal effective batch normalization (TEBN, Duan et al., NeurIPS 2022).

On the merged time-major tensor ``x`` of shape ``[T*B, C, ...]``::

    xhat   = (x - mean) / sqrt(var + eps)      # per channel, over time, batch and space
    out[t] = p[t] * (gamma * xhat[t] + beta)   # p: one learnable scale per time step, init 1

``gamma, beta`` are shared across time. Training uses the batch statistics and updates running
estimates (like ``BatchNorm``); evaluation uses the running estimates, and ``p[t]`` stays.
The layer owns ``T`` (the shape of ``p``), so its input must hold exactly ``T`` steps.

The ``tebn`` layer kind (``tebn_kind``): ``conv (bias-free) -> TEBN`` for hidden layers and a
plain linear readout; it needs the network's ``T``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models.kinds import LayerKind
from ..nn import plain_conv, plain_linear


class TEBN(nn.Module):
    """BatchNorm over ``[T*B, C, ...]`` followed by a per-time-step scale ``p[t]`` (shape ``[T]``).

    ``time_dependent = True``: the output depends on the time step, so a network must not compute
    it once and broadcast it over time (see ``models.blocks.SpikingUnit.forward_static``).
    """

    time_dependent = True

    def __init__(
        self,
        num_features: int,
        T: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"TEBN needs T >= 1, got {T}")
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.T = T
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.empty(num_features, **factory))
        self.bias = nn.Parameter(torch.empty(num_features, **factory))
        self.p = nn.Parameter(torch.empty(T, **factory))
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))
        self.register_buffer(
            "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``gamma = 1, beta = 0, p = 1``; running statistics reset to mean 0, variance 1."""
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        nn.init.ones_(self.p)
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"TEBN expects [T*B, {self.num_features}, ...], got shape {tuple(x.shape)}"
            )
        if x.shape[0] % self.T:
            raise ValueError(
                f"TEBN was built for T={self.T} but its merged input has {x.shape[0]} rows "
                "(not a multiple of T)"
            )
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )
        steps = y.view(self.T, -1, *y.shape[1:])
        return (steps * self.p.view(self.T, *([1] * (steps.dim() - 1)))).view_as(y)

    def extra_repr(self) -> str:
        return f"{self.num_features}, T={self.T}, eps={self.eps}, momentum={self.momentum}"


class ConvTEBN(nn.Sequential):
    """``plain_conv -> TEBN`` on merged ``[T*B, C, H, W]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        *,
        T: int,
    ) -> None:
        conv = plain_conv(in_channels, out_channels, kernel_size, stride, padding)
        super().__init__(conv, TEBN(out_channels, T))


class LinearTEBN(nn.Sequential):
    """``plain_linear -> TEBN`` on merged ``[T*B, features]``."""

    def __init__(self, in_features: int, out_features: int, *, T: int) -> None:
        super().__init__(plain_linear(in_features, out_features), TEBN(out_features, T))


def tebn_kind(ei_options: Mapping[str, Any], time_steps: int | None) -> LayerKind:
    """The ``tebn`` layer kind of a network with ``T = time_steps`` (E-I options ignored)."""
    if time_steps is None or time_steps < 1:
        raise ValueError(f"the tebn layer kind needs time_steps >= 1, got {time_steps}")
    return LayerKind(
        "tebn",
        conv=partial(ConvTEBN, T=time_steps),
        linear=partial(LinearTEBN, T=time_steps),
        readout=nn.Linear,
    )
