"""The options of an E-I layer: one frozen record, validated once, that knows its defaults.

``EIConv2d``, ``EILinear`` and ``EIRecurrent`` take these as keyword-only arguments; a layer
kind (``eisnn.models``) builds one record per network and hands it to every layer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import functional as EF
from .dale_parametrization import check_policy

INIT_MODES: tuple[str, ...] = ("ei", "standard")
# the options of spiking I units, held by their population (``InhibitoryPopulation``)
POPULATION_OPTIONS: tuple[str, ...] = (
    "tau_i",
    "v_threshold_i",
    "surrogate_i",
    "alpha_i",
    "time_steps",
)
# the options of a network's hidden layers only: the readout keeps the ratio's I count and the
# paper's ReLU I units (its output is a current, not spikes)
HIDDEN_ONLY_OPTIONS: tuple[str, ...] = ("n_inhibitory", "inhibitory", *POPULATION_OPTIONS)


def check_unit_counts(ei_ratio: float, n_inhibitory: int | None) -> None:
    """A one-line ``ValueError`` unless ``n_inhibitory >= 1`` (when given) or ``ei_ratio >= 1``."""
    if n_inhibitory is not None:
        if n_inhibitory < 1:
            raise ValueError(f"n_inhibitory must be >= 1, got {n_inhibitory}")
    elif ei_ratio < 1:
        raise ValueError(f"ei_ratio must be >= 1, got {ei_ratio}")


def inhibitory_count(n_excitatory: int, ei_ratio: float, n_inhibitory: int | None = None) -> int:
    """``n_I = max(1, floor(n_E / ratio))``: the paper's ``n_E // ratio``, at least one I unit
    (any real ratio >= 1: 100 E units at ratio 3 give 33 I units, at ratio 16 give 6).
    ``n_inhibitory`` given directly wins over the ratio."""
    check_unit_counts(ei_ratio, n_inhibitory)
    if n_inhibitory is not None:
        return int(n_inhibitory)
    return max(1, math.floor(n_excitatory / ei_ratio))


@dataclass(frozen=True)
class EIOptions:
    """The E-I options of one layer (SPEC section 1; all beyond-paper options off by default).

    The paper's: ``ei_ratio`` (``n_I = max(1, floor(n_E / ratio))``), ``readout`` (return the
    balanced current ``I_EE - W_EI I_I`` only), ``stabilization`` of the divisive path
    (``adaptive``, ``epsilon`` with ``epsilon``, ``none``), ``ste`` (straight-through gradient of
    the adaptive stabilization), ``scale_w_ei_grad`` (``W_EI``'s gradient divided by the fan-in),
    ``init`` (``"ei"``: the data-dependent E-I Init; ``"standard"``: the data-free one).
    Beyond it: ``n_inhibitory`` (the I count given directly), spiking I units
    (``inhibitory="lif"`` with ``tau_i, v_threshold_i, surrogate_i, alpha_i`` and the network's
    ``time_steps``; validated by ``InhibitoryPopulation``), and the Dale policy ``dale``.
    """

    ei_ratio: float = 4
    readout: bool = False
    stabilization: str = "adaptive"
    epsilon: float = 1e-8
    ste: bool = True
    scale_w_ei_grad: bool = True
    init: str = "ei"
    n_inhibitory: int | None = None
    inhibitory: str = "relu"
    tau_i: float = 2.0
    v_threshold_i: float = 1.0
    surrogate_i: str = "sigmoid"
    alpha_i: float = 4.0
    time_steps: int | None = None
    dale: str = "clamp"

    def __post_init__(self) -> None:
        if self.stabilization not in EF.STABILIZATIONS:
            raise ValueError(
                f"stabilization must be one of {list(EF.STABILIZATIONS)}, "
                f"got {self.stabilization!r}"
            )
        if self.init not in INIT_MODES:
            raise ValueError(f"init must be one of {list(INIT_MODES)}, got {self.init!r}")
        check_unit_counts(self.ei_ratio, self.n_inhibitory)
        check_policy(self.dale)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every option's name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, owner: str, options: Mapping[str, Any]) -> EIOptions:
        """The record of keyword arguments ``options`` given to ``owner`` (a class name); a
        one-line ``TypeError`` naming any unknown option."""
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"{owner} got unknown E-I option(s) {unknown}; allowed: {list(cls.names())}"
            )
        return cls(**options)

    def as_kwargs(self) -> dict[str, Any]:
        """Every option as a keyword argument of the E-I layers."""
        return {name: getattr(self, name) for name in self.names()}

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults, in declaration order."""
        return {k: v for k, v in self.as_kwargs().items() if v != getattr(_DEFAULTS, k)}

    def for_readout(self) -> EIOptions:
        """The options of a network's readout layer: ``readout=True`` and the hidden-only
        options (``HIDDEN_ONLY_OPTIONS``) at their defaults."""
        reset = {name: getattr(_DEFAULTS, name) for name in HIDDEN_ONLY_OPTIONS}
        return dataclasses.replace(self, readout=True, **reset)


_DEFAULTS = EIOptions()
