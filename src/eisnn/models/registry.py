"""The model registry: ``<kind>_<arch>`` names built from one definition per architecture.

Three registries, filled at import time (the comparison systems register theirs from
``eisnn.baselines``, which ``import eisnn`` imports):

- layer kinds by name (``register_kind``): what a network's weight layers are made of;
- architectures by name (``register_architecture``): a network taking a ``LayerKind``, built as
  ``<kind>_<arch>`` for every registered kind it accepts, whichever is registered first;
- models by name (``register_model``): every buildable name, including networks with their own
  layers and neurons (``register_own_units``), each with the options it acts on
  (``model_options``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .blocks import NeuronOptions, SpikingNetwork
from .kinds import EI_OPTIONS, KindBuilder, LayerKind, bn_kind, ei_kind, plain_kind
from .mlp import MLP
from .recurrent import RECURRENT_KINDS, RecurrentSNN
from .resnet import RESNET_PLANS, ResNet
from .vgg import VGG, VGG_PLANS

NEURON_OPTIONS: tuple[str, ...] = ("tau", "v_threshold", "surrogate", "alpha")
Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}
_OPTIONS: dict[str, frozenset[str]] = {}
_KINDS: dict[str, tuple[KindBuilder, frozenset[str]]] = {}


@dataclass(frozen=True)
class _Architecture:
    """A network parameterized by the layer kind, with its fixed options (``plan``, ``depth``)
    and the kinds it accepts (``None``: every kind)."""

    network: Callable[..., SpikingNetwork]
    fixed: dict[str, Any] = field(default_factory=dict)
    kinds: tuple[str, ...] | None = None

    def accepts(self, kind_name: str) -> bool:
        return self.kinds is None or kind_name in self.kinds


_ARCHITECTURES: dict[str, _Architecture] = {}


def register_model(name: str, builder: Builder, options: Iterable[str]) -> None:
    """Make ``create_model(name, ...)`` call ``builder(num_classes, in_channels, T, **kwargs)``;
    ``options`` names the keyword options the model acts on (``model_options``)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = builder
    _OPTIONS[name] = frozenset(options)


def register_kind(name: str, build: KindBuilder, options: Iterable[str] = ()) -> None:
    """Register the layer kind ``name`` (``build(ei_options, time_steps) -> LayerKind``; it acts
    on the E-I options in ``options``) and the model ``<name>_<arch>`` of every registered
    architecture that accepts it."""
    if name in _KINDS:
        raise ValueError(f"layer kind {name!r} is already registered")
    _KINDS[name] = (build, frozenset(options))
    for arch_name, arch in _ARCHITECTURES.items():
        if arch.accepts(name):
            _register_layered(arch_name, arch, name)


def register_architecture(
    name: str,
    network: Callable[..., SpikingNetwork],
    *,
    kinds: tuple[str, ...] | None = None,
    **fixed: Any,
) -> None:
    """Register ``network(kind=..., num_classes, in_channels, T, neuron, **fixed, ...)`` as the
    models ``<kind>_<name>`` of every registered layer kind in ``kinds`` (``None``: every one),
    present and future."""
    if name in _ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is already registered")
    arch = _Architecture(network, fixed, kinds)
    _ARCHITECTURES[name] = arch
    for kind_name in _KINDS:
        if arch.accepts(kind_name):
            _register_layered(name, arch, kind_name)


def _register_layered(arch_name: str, arch: _Architecture, kind_name: str) -> None:
    """The model ``<kind>_<arch>``: the network's own options, the neuron options and the
    options of the kind."""
    options = _own_options(arch.network, arch.fixed) | set(NEURON_OPTIONS) | _KINDS[kind_name][1]
    register_model(f"{kind_name}_{arch_name}", _builder(arch, kind_name), options)


def kind_names() -> list[str]:
    """All registered layer kinds."""
    return sorted(_KINDS)


def make_kind(
    name: str, ei_options: Mapping[str, Any] | None = None, time_steps: int | None = None
) -> LayerKind:
    """The ``LayerKind`` ``name`` of a network with ``T = time_steps`` (E-I options: ``EI_OPTIONS``,
    used by the ``ei`` kind)."""
    if name not in _KINDS:
        raise ValueError(f"unknown layer kind {name!r}; choose one of {kind_names()}")
    return _KINDS[name][0](ei_options or {}, time_steps)


def list_models() -> list[str]:
    """All registered model names."""
    return sorted(_REGISTRY)


def model_options(name: str) -> frozenset[str]:
    """The keyword options that change the model ``name`` builds (besides ``num_classes``,
    ``in_channels``, ``T``): the network's own, the neuron options for networks of spiking
    units, and the E-I options for E-I networks. ``create_model`` ignores the others."""
    _check_name(name)
    return _OPTIONS[name]


def create_model(name: str, num_classes: int, in_channels: int, T: int, **kwargs: Any) -> nn.Module:
    """Build a registered network.

    ``kwargs``: architecture options (``image_size``, ``width``, ``dropout``, ``hidden`` for MLPs),
    neuron options (``tau, v_threshold, surrogate, alpha``) and, for E-I models, the E-I layer
    options (``ei_ratio, stabilization, epsilon, ste, scale_w_ei_grad, init``, and beyond the
    paper ``n_inhibitory, inhibitory, tau_i, v_threshold_i, surrogate_i, alpha_i, dale``; ignored
    by other kinds). The baselines with their own units (``dann_vgg16``, ``backeisnn_cnn5``)
    ignore both groups.
    """
    _check_name(name)
    return _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, T=T, **kwargs)


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")


def _split_options(
    kind_name: str, T: int, kwargs: dict[str, Any]
) -> tuple[LayerKind, NeuronOptions, dict[str, Any]]:
    ei = {k: kwargs.pop(k) for k in EI_OPTIONS if k in kwargs}
    neuron = NeuronOptions(**{k: kwargs.pop(k) for k in NEURON_OPTIONS if k in kwargs})
    return make_kind(kind_name, ei, time_steps=T), neuron, kwargs


def _builder(arch: _Architecture, kind_name: str) -> Builder:
    def build(num_classes: int, in_channels: int, T: int, **kwargs: Any) -> nn.Module:
        kind, neuron, rest = _split_options(kind_name, T, dict(kwargs))
        _check_options(arch.network, rest, arch.fixed)
        return arch.network(
            kind=kind,
            num_classes=num_classes,
            in_channels=in_channels,
            T=T,
            neuron=neuron,
            **arch.fixed,
            **rest,
        )

    return build


def _own_options(network: Callable[..., nn.Module], fixed: Iterable[str] = ()) -> set[str]:
    """The parameters of ``network`` a caller sets by name (not the ones the registry provides)."""
    set_by_registry = {"kind", "neuron", "num_classes", "in_channels", "T", *fixed}
    return set(inspect.signature(network).parameters) - set_by_registry


def _check_options(
    network: Callable[..., nn.Module], options: dict[str, Any], fixed: dict[str, Any]
) -> None:
    allowed = _own_options(network, fixed)
    unknown = sorted(set(options) - allowed)
    if unknown:
        everything = sorted(allowed | set(NEURON_OPTIONS) | set(EI_OPTIONS))
        raise ValueError(
            f"unknown option(s) {unknown} for {network.__name__}; allowed: {everything}"
        )


def register_own_units(name: str, network: Callable[..., nn.Module]) -> None:
    """Register the model ``name``: a network with its own layers and neurons, which acts on its
    own options only (the shared E-I and neuron options are ignored)."""

    def build(num_classes: int, in_channels: int, T: int, **kwargs: Any) -> nn.Module:
        rest = {k: v for k, v in kwargs.items() if k not in EI_OPTIONS and k not in NEURON_OPTIONS}
        _check_options(network, rest, {})
        return network(num_classes=num_classes, in_channels=in_channels, T=T, **rest)

    register_model(name, build, _own_options(network))


register_kind("ei", ei_kind, EI_OPTIONS)
register_kind("bn", bn_kind)
register_kind("plain", plain_kind)
for _depth, _plan in VGG_PLANS.items():
    register_architecture(f"vgg{_depth}", VGG, plan=_plan)
for _depth in RESNET_PLANS:
    register_architecture(f"resnet{_depth}", ResNet, depth=_depth)
register_architecture("mlp", MLP)
register_architecture("rnn", RecurrentSNN, kinds=RECURRENT_KINDS)
