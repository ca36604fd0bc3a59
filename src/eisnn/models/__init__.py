"""Spiking networks defined once and parameterized by the layer kind (E-I, BN, plain), and the
registry that builds them by name. The comparison systems (``eisnn.baselines``) register theirs
into the same registry."""

from .blocks import NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind
from .mlp import MLP
from .recurrent import RecurrentSNN, RecurrentUnit
from .registry import (
    create_model,
    kind_names,
    list_models,
    make_kind,
    model_options,
    register_architecture,
    register_kind,
    register_model,
    register_own_units,
)
from .resnet import ResNet, SEWBlock
from .vgg import VGG

__all__ = [
    "MLP",
    "VGG",
    "LayerKind",
    "NeuronOptions",
    "PerStep",
    "RecurrentSNN",
    "RecurrentUnit",
    "ResNet",
    "SEWBlock",
    "SpikingNetwork",
    "SpikingUnit",
    "create_model",
    "kind_names",
    "list_models",
    "make_kind",
    "register_architecture",
    "register_kind",
    "model_options",
    "register_model",
    "register_own_units",
]
