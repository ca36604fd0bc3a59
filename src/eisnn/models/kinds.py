"""Layer kinds: what a network's weight layers are made of, so that each network is defined once.

A ``LayerKind`` holds the constructors the blocks of a network call: ``kind.conv(in, out,
kernel_size, stride, padding)``, ``kind.linear(in, out)``, ``kind.readout(in, classes)`` and,
where the kind has one, ``kind.recurrent(in, hidden, neuron)``. A *kind builder* makes the
``LayerKind`` of one network from the E-I options and the network's ``T``; builders are
registered by name (``eisnn.models.registry.register_kind``). The paper's kinds:

- ``ei``: E-I layers (``EIConv2d``/``EILinear``/``EIRecurrent``) and an E-I readout; no
  normalization.
- ``bn``: the BN-SNN twin, ``conv (bias-free) -> BatchNorm`` and a plain linear readout.
- ``plain``: neither: bias-free conv/linear with Kaiming init, plain linear readout, and the
  recurrent layer without E-I.

The comparison systems add theirs (``tebn``, in ``eisnn.baselines``). Kinds other than ``ei``
ignore the E-I options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn

from ..nn import (
    ConvBN,
    EIConv2d,
    EILinear,
    EIOptions,
    EIRecurrent,
    LinearBN,
    PlainRecurrent,
    plain_conv,
    plain_linear,
)
from .blocks import NeuronOptions

# the E-I options a user gives a network (``readout`` and ``time_steps`` the network sets)
EI_OPTIONS: tuple[str, ...] = tuple(
    name for name in EIOptions.names() if name not in ("readout", "time_steps")
)
ConvFactory = Callable[..., nn.Module]  # (in_channels, out_channels, kernel_size, stride, padding)
LinearFactory = Callable[[int, int], nn.Module]  # (in_features, out_features)
RecurrentFactory = Callable[[int, int, NeuronOptions], nn.Module]  # (in, hidden, neuron)


@dataclass(frozen=True)
class LayerKind:
    """The weight layers of one network: ``conv`` and ``linear`` produce the input current of a
    spiking layer, ``readout`` the last layer (its output averaged over time is the logits),
    ``recurrent`` a recurrent spiking layer (``None``: the kind has none)."""

    name: str
    conv: ConvFactory
    linear: LinearFactory
    readout: LinearFactory
    recurrent: RecurrentFactory | None = None


KindBuilder = Callable[[Mapping[str, Any], int | None], LayerKind]


def ei_kind(ei_options: Mapping[str, Any], time_steps: int | None) -> LayerKind:
    """E-I layers with ``ei_options``; the hidden ones get ``time_steps`` (spiking I units need
    ``T``), the readout the options of ``EIOptions.for_readout``."""
    hidden = EIOptions.of("the ei layer kind", {**ei_options, "time_steps": time_steps})
    options = hidden.as_kwargs()

    def recurrent(in_features: int, hidden_features: int, neuron: NeuronOptions) -> nn.Module:
        return EIRecurrent(in_features, hidden_features, neuron.make(), **options)

    return LayerKind(
        "ei",
        conv=partial(EIConv2d, **options),
        linear=partial(EILinear, **options),
        readout=partial(EILinear, **hidden.for_readout().as_kwargs()),
        recurrent=recurrent,
    )


def bn_kind(ei_options: Mapping[str, Any], time_steps: int | None) -> LayerKind:
    """The BN-SNN twin: ``ConvBN`` / ``LinearBN`` and a linear readout."""
    return LayerKind("bn", conv=ConvBN, linear=LinearBN, readout=nn.Linear)


def _plain_recurrent(in_features: int, hidden_features: int, neuron: NeuronOptions) -> nn.Module:
    return PlainRecurrent(in_features, hidden_features, neuron.make())


def plain_kind(ei_options: Mapping[str, Any], time_steps: int | None) -> LayerKind:
    """Neither E-I nor normalization: Kaiming-initialized bias-free layers, a linear readout."""
    return LayerKind(
        "plain",
        conv=plain_conv,
        linear=plain_linear,
        readout=nn.Linear,
        recurrent=_plain_recurrent,
    )
