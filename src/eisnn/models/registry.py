"""The model registry: ``<kind>_<arch>`` names built from one definition per architecture."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, Callable

from torch import nn

from .backeisnn import BackEISNN
from .blocks import NeuronOptions, SpikingNetwork
from .dann import DANNVGG
from .kinds import EI_OPTIONS, KIND_NAMES, LayerKind
from .mlp import MLP
from .recurrent import RECURRENT_KINDS, RecurrentSNN
from .resnet import RESNET_PLANS, ResNet
from .resnet19 import ResNet19
from .vgg import VGG_PLANS, VGG

NEURON_OPTIONS: tuple[str, ...] = ("tau", "v_threshold", "surrogate", "alpha")
Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}
_OPTIONS: dict[str, frozenset[str]] = {}


def register_model(name: str, builder: Builder, options: Iterable[str]) -> None:
    """Make ``create_model(name, ...)`` call ``builder(num_classes, in_channels, T, **kwargs)``;
    ``options`` names the keyword options the model acts on (see :func:`model_options`)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = builder
    _OPTIONS[name] = frozenset(options)


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
    neuron options (``tau, v_threshold, surrogate, alpha``) and, for E-I models, the E-I layer options
    (``ei_ratio, stabilization, epsilon, ste, scale_w_ei_grad, init``, and beyond the paper
    ``n_inhibitory, inhibitory, tau_i, v_threshold_i, surrogate_i, alpha_i, dale``; ignored by other kinds). The
    baselines with their own units (``dann_vgg16``, ``backeisnn_cnn5``) ignore both groups.
    """
    _check_name(name)
    return _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, T=T, **kwargs)


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")


def _split_options(kind_name: str, T: int, kwargs: dict[str, Any]) -> tuple[LayerKind, NeuronOptions, dict[str, Any]]:
    ei = {k: kwargs.pop(k) for k in EI_OPTIONS if k in kwargs}
    neuron = NeuronOptions(**{k: kwargs.pop(k) for k in NEURON_OPTIONS if k in kwargs})
    return LayerKind(kind_name, ei if kind_name == "ei" else {}, time_steps=T), neuron, kwargs


def _builder(network: Callable[..., SpikingNetwork], kind_name: str, **fixed: Any) -> Builder:
    def build(num_classes: int, in_channels: int, T: int, **kwargs: Any) -> nn.Module:
        kind, neuron, rest = _split_options(kind_name, T, dict(kwargs))
        _check_options(network, rest, fixed)
        return network(kind=kind, num_classes=num_classes, in_channels=in_channels, T=T, neuron=neuron, **fixed, **rest)

    return build


def _own_options(network: Callable[..., nn.Module], fixed: Iterable[str] = ()) -> set[str]:
    """The parameters of ``network`` a caller sets by name (not the ones the builder provides)."""
    provided = {"kind", "neuron", "num_classes", "in_channels", "T", *fixed}
    return set(inspect.signature(network).parameters) - provided


def _check_options(network: Callable[..., nn.Module], options: dict[str, Any], fixed: dict[str, Any]) -> None:
    allowed = _own_options(network, fixed)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {network.__name__}; allowed: {sorted(allowed | set(NEURON_OPTIONS) | set(EI_OPTIONS))}")


def _own_units_builder(network: Callable[..., nn.Module]) -> Builder:
    """A network with its own layers and neurons: the shared E-I and neuron options are ignored."""

    def build(num_classes: int, in_channels: int, T: int, **kwargs: Any) -> nn.Module:
        rest = {k: v for k, v in kwargs.items() if k not in EI_OPTIONS and k not in NEURON_OPTIONS}
        _check_options(network, rest, {})
        return network(num_classes=num_classes, in_channels=in_channels, T=T, **rest)

    return build


def _register_layered(name: str, network: Callable[..., SpikingNetwork], kind_name: str,
                      **fixed: Any) -> None:
    """Register ``network`` made of ``kind_name`` layers of spiking units, with its options."""
    shared = NEURON_OPTIONS + (EI_OPTIONS if kind_name == "ei" else ())
    options = _own_options(network, fixed) | set(shared)
    register_model(name, _builder(network, kind_name, **fixed), options)


for _kind in KIND_NAMES:
    for _depth, _plan in VGG_PLANS.items():
        _register_layered(f"{_kind}_vgg{_depth}", VGG, _kind, plan=_plan)
    for _depth in RESNET_PLANS:
        _register_layered(f"{_kind}_resnet{_depth}", ResNet, _kind, depth=_depth)
    _register_layered(f"{_kind}_resnet19", ResNet19, _kind)
    _register_layered(f"{_kind}_mlp", MLP, _kind)
for _kind in RECURRENT_KINDS:
    _register_layered(f"{_kind}_rnn", RecurrentSNN, _kind)
register_model("dann_vgg16", _own_units_builder(DANNVGG), _own_options(DANNVGG))
register_model("backeisnn_cnn5", _own_units_builder(BackEISNN), _own_options(BackEISNN))
