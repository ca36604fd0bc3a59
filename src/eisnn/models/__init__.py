"""Spiking networks defined once and parameterized by the layer kind (E-I, BN, plain)."""

from .blocks import NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .kinds import LayerKind
from .mlp import MLP
from .registry import create_model, list_models, register_model
from .resnet import ResNet, SEWBlock
from .vgg import VGG

__all__ = [
    "MLP",
    "VGG",
    "LayerKind",
    "NeuronOptions",
    "PerStep",
    "ResNet",
    "SEWBlock",
    "SpikingNetwork",
    "SpikingUnit",
    "create_model",
    "list_models",
    "register_model",
]
