"""Recurrent spiking layers: the input at step ``t`` and the layer's own spikes at ``t - 1``.

``EIRecurrent`` is an E-I layer whose input is ``z_t = [x_t, s_E(t-1)]``: its ``W_EE`` and ``W_IE``
are ``[W_in | W_rec]``, so the recurrence is excitatory (E->E and E->I, non-negative by Dale's
law), with the same lateral inhibition, E-I Init and Dale policy as every E-I layer::

    [I_EE; I_I](t) = [W_EE; W_IE] @ [x_t, s_E(t-1)]          (s_E(-1) = 0)
    s_I(t)         = I_I(t)  (ReLU units)   or   LIF_I step (spiking I units)
    I_int(t)       = g_E (I_EE - W_EI s_I) / stabilize(W_EI (g_I s_I)) + b_E
    s_E(t)         = LIF step of I_int(t)

``PlainRecurrent`` is the baseline without E-I: ``s(t) = LIF(W_in x_t + W_rec s(t-1) + b)``.
Both take ``[T, B, in_features]`` and return spikes ``[T, B, hidden]`` (membranes start at 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import functional as EF
from .ei import EILinear
from .lif import LIF

Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def run_recurrence(
    ff: torch.Tensor, w_rec: torch.Tensor, n_out: int, step: Step, state: Any
) -> torch.Tensor:
    """Loop ``c_t = ff_t + W_rec s(t-1)``, ``(s(t), state) = step(c_t, state)``; returns
    ``[T, B, n_out]``."""
    s = ff.new_zeros(ff.shape[1], n_out)
    out = []
    for t in range(ff.shape[0]):
        s, state = step(ff[t] + F.linear(s, w_rec), state)
        out.append(s)
    return torch.stack(out)


class EIRecurrent(EILinear):
    """Recurrent E-I layer with its excitatory LIF neurons: ``[T, B, in] -> spikes [T, B, hidden]``.

    Parameters are those of ``EILinear(in_features + hidden_features, hidden_features)``;
    ``lif``: the E neurons (default ``LIF()``); ``ei_options`` those of the E-I layers
    (``ei_ratio, inhibitory, dale, ...``).
    """

    def __init__(
        self, in_features: int, hidden_features: int, lif: LIF | None = None, **ei_options: Any
    ) -> None:
        super().__init__(in_features + hidden_features, hidden_features, **ei_options)
        self.input_features = in_features
        self.hidden_features = hidden_features
        self.lif = lif if lif is not None else LIF()

    def _previous_spikes_input(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The merged input ``z = [x_t, s(t-1)]`` of all steps, ``[T*B, in + hidden]``."""
        previous = torch.cat([torch.zeros_like(s[:1]), s[:-1]])
        return torch.cat([x, previous], dim=-1).flatten(0, 1)

    def ei_init_from(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """E-I Init from the layer's actual input ``z_t = [x_t, s(t-1)]`` (``x`` is ``[T, B, in]``).

        The spikes depend on the weights, so two passes: init from ``[x_t, 0]``, run the layer,
        then init again from ``[x_t, s(t-1)]`` with the spikes of that run.
        """
        silent = x.new_zeros(*x.shape[:2], self.hidden_features)
        super().ei_init_from(self._previous_spikes_input(x, silent), generator)
        with torch.no_grad():
            spikes = self(x)
        super().ei_init_from(self._previous_spikes_input(x, spikes), generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_initialized()
        n_e = self.n_excitatory
        weight = EF.stack_weights(self.w_ee, self.w_ie)
        ff = F.linear(x, weight[:, : self.input_features])
        population = self.i_population

        def step(c: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
            v_e, v_i = state
            s_i = None
            if population is not None:
                s_i, v_i = population.step(c[:, n_e:], v_i)
            s_e, v_e = self.lif.step(self.integrate(c, s_i), v_e)
            return s_e, (v_e, v_i)

        batch = x.shape[1]
        state = (x.new_zeros(batch, n_e), x.new_zeros(batch, self.n_inhibitory))
        return run_recurrence(ff, weight[:, self.input_features :], n_e, step, state)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.input_features}, hidden={self.hidden_features}, "
            f"{self._ei_repr()}, {self.lif.extra_repr()}"
        )


class PlainRecurrent(nn.Module):
    """Recurrent spiking layer without E-I: ``s(t) = LIF(W_in x_t + W_rec s(t-1) + b)``,
    unconstrained weights, Kaiming-normal init over the fan-in ``in + hidden``; ``lif``: the
    neurons (default ``LIF()``)."""

    def __init__(self, in_features: int, hidden_features: int, lif: LIF | None = None) -> None:
        super().__init__()
        self.input_features = in_features
        self.hidden_features = hidden_features
        self.linear = nn.Linear(in_features + hidden_features, hidden_features)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_in", nonlinearity="relu")
        self.lif = lif if lif is not None else LIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.linear.weight
        ff = F.linear(x, w[:, : self.input_features], self.linear.bias)

        return run_recurrence(
            ff,
            w[:, self.input_features :],
            self.hidden_features,
            self.lif.step,
            x.new_zeros(x.shape[1], self.hidden_features),
        )
