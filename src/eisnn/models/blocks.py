"""Time-aware building blocks shared by every network.

Between blocks, activity is time-major ``[T, B, ...]``. Weight layers and pooling run on the
merged ``[T*B, ...]`` view (``per_step``); the LIF neuron runs over ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..nn import LIF, is_initialized


@dataclass(frozen=True)
class NeuronOptions:
    """Options of every LIF neuron of a network (SPEC section 5)."""

    tau: float = 2.0
    v_threshold: float = 1.0
    surrogate: str = "sigmoid"
    alpha: float = 4.0

    def make(self) -> LIF:
        return LIF(self.tau, self.v_threshold, self.surrogate, self.alpha)


DEFAULT_NEURON = NeuronOptions()  # the networks' default (frozen, so one shared instance is safe)


def is_time_dependent(module: nn.Module) -> bool:
    """True when a submodule's output depends on the time step (declares ``time_dependent = True``,
    e.g. TEBN's per-step scale): such a module needs exactly its own ``T`` steps in its input."""
    return any(getattr(m, "time_dependent", False) for m in module.modules())


def per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply ``module`` to ``[T, B, ...]`` as one merged ``[T*B, ...]`` batch."""
    out = module(x.flatten(0, 1))
    return out.view(x.shape[0], x.shape[1], *out.shape[1:])


class PerStep(nn.Module):
    """Wrap a stateless module (pooling, flatten) to run on ``[T, B, ...]``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_step(self.module, x)


class SpikingUnit(nn.Module):
    """``current -> LIF -> dropout``: one spiking layer, ``[T, B, ...]`` in and out.

    ``neuron``: the options of the paper's LIF, or any multi-step neuron module (``[T, B, ...]``).
    """

    def __init__(
        self, current: nn.Module, neuron: NeuronOptions | nn.Module, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.current = current
        self.lif = neuron if isinstance(neuron, nn.Module) else neuron.make()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.lif(per_step(self.current, x)))

    def forward_static(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Direct encoding: the same input ``[B, ...]`` at each of ``T`` steps.

        The input current is computed once and broadcast over time. Before the E-I Init the
        input is repeated instead, so that the init statistics see the whole ``[T*B]`` batch; a
        time-dependent current (TEBN) always sees the repeated input.
        """
        if not is_initialized(self.current) or is_time_dependent(self.current):
            return self(x.unsqueeze(0).expand(T, *x.shape))
        current = self.current(x)
        return self.dropout(self.lif(current.unsqueeze(0).expand(T, *current.shape)))


class SpikingNetwork(nn.Module):
    """A stem unit, a body and a readout head; logits are the readout averaged over time.

    Input ``[B, C, H, W]`` (static, repeated over ``self.T``) or ``[B, T, C, H, W]`` (frames).
    Subclasses set ``stem`` (a ``SpikingUnit``), ``body`` and ``head``
    (``[T, B, ...] -> [T, B, classes]``).
    """

    stem: SpikingUnit
    body: nn.Module
    head: nn.Module

    def __init__(self, T: int, static_dims: int = 4) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        self.T = T
        self.static_dims = static_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == self.static_dims:
            h = self.stem.forward_static(x, self.T)
        elif x.dim() == self.static_dims + 1:
            if x.shape[1] != self.T and is_time_dependent(self):
                raise ValueError(
                    f"{type(self).__name__} was built for T={self.T} but got {x.shape[1]} frames"
                )
            h = self.stem(x.transpose(0, 1))
        else:
            raise ValueError(
                f"{type(self).__name__} expects a static input with {self.static_dims} dims "
                f"or frames with {self.static_dims + 1} dims ([B, T, ...]), "
                f"got shape {tuple(x.shape)}"
            )
        return self.head(self.body(h)).mean(0)
