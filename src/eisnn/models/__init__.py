"""Spiking networks defined once and parameterized by the layer kind (E-I, BN, TEBN, plain), and the
baselines with their own units (DANN VGG-16, BackEISNN CNN-5)."""

from .backeisnn import BackEISNN
from .blocks import NeuronOptions, PerStep, SpikingNetwork, SpikingUnit
from .dann import DANNVGG
from .kinds import LayerKind
from .mlp import MLP
from .recurrent import RecurrentSNN, RecurrentUnit
from .registry import create_model, list_models, model_options, register_model
from .resnet import ResNet, SEWBlock
from .resnet19 import PreSpikeResidualBlock, ResNet19
from .vgg import VGG

__all__ = [
    "DANNVGG",
    "MLP",
    "VGG",
    "BackEISNN",
    "LayerKind",
    "NeuronOptions",
    "PerStep",
    "PreSpikeResidualBlock",
    "RecurrentSNN",
    "RecurrentUnit",
    "ResNet",
    "ResNet19",
    "SEWBlock",
    "SpikingNetwork",
    "SpikingUnit",
    "create_model",
    "list_models",
    "model_options",
    "register_model",
]
