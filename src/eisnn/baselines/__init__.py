"""The paper's comparison systems: their layers, neurons and networks, registered in the same
model registry as the paper's networks (``eisnn.models.create_model``).

- TEBN (Duan et al., 2022): the ``tebn`` layer kind, hence ``tebn_<arch>`` for every
  kind-parameterized architecture (``tebn.py``).
- ResNet-19, the usual ResNet of the BN baselines, for every layer kind: ``<kind>_resnet19``
  (``resnet19.py``).
- DANN (Cornford et al., 2021): its E-I layers (``dann.py``) and VGG-16, ``dann_vgg16``
  (``dann_vgg.py``).
- BackEISNN (Zhao et al., 2022): its neurons (``backei.py``) and CNN-5, ``backeisnn_cnn5``
  (``backeisnn.py``).

``import eisnn`` imports this package, which registers them once.
"""

from ..models import register_architecture, register_kind, register_own_units
from .backei import BackEINeuron, HardResetLIF, rect_sign, rect_spike
from .backeisnn import BackEISNN
from .dann import DANN_DALE_PARAMETERS, DANNConv2d, DANNLayer, DANNLinear
from .dann_vgg import DANNVGG
from .resnet19 import PreSpikeResidualBlock, ResNet19
from .tebn import TEBN, ConvTEBN, LinearTEBN, tebn_kind

__all__ = [
    "DANNVGG",
    "DANN_DALE_PARAMETERS",
    "TEBN",
    "BackEINeuron",
    "BackEISNN",
    "ConvTEBN",
    "DANNConv2d",
    "DANNLayer",
    "DANNLinear",
    "HardResetLIF",
    "LinearTEBN",
    "PreSpikeResidualBlock",
    "ResNet19",
    "rect_sign",
    "rect_spike",
    "tebn_kind",
]

register_kind("tebn", tebn_kind)
register_architecture("resnet19", ResNet19)
register_own_units("dann_vgg16", DANNVGG)
register_own_units("backeisnn_cnn5", BackEISNN)
