"""The package's layering and registries: imports point down only, layer kinds build their
layers, and importing eisnn registers the comparison systems next to the paper's networks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import eisnn
from eisnn.baselines import TEBN, BackEINeuron, ConvTEBN, HardResetLIF
from eisnn.models import NeuronOptions, kind_names, list_models, make_kind
from eisnn.nn import (
    LIF,
    ConvBN,
    EIConv2d,
    EILinear,
    EIRecurrent,
    LinearBN,
    PlainRecurrent,
    is_spiking_neuron,
)
from eisnn.train.monitor import spiking_layers

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "eisnn"
LOWER_LAYERS = ("functional", "nn", "models")
ABOVE_THEM = ("baselines", "init", "dale", "train", "diagnostics", "cli")


def _imported_modules(source: str, package: str) -> set[str]:
    """Every module that ``source`` (a module of ``package``) imports, relative imports resolved,
    and for ``from M import n`` also ``M.n`` (``n`` may be a submodule: ``from .. import dale``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    return _imported_modules(path.read_text(), package)


def _upward(modules: set[str]) -> list[str]:
    """The modules of ``eisnn`` layers above functional/nn/models among ``modules``."""
    return sorted(
        m
        for m in modules
        if m.split(".")[0] == "eisnn" and len(m.split(".")) > 1 and m.split(".")[1] in ABOVE_THEM
    )


def _lower_layer_files() -> list[Path]:
    return sorted(p for layer in LOWER_LAYERS for p in (PACKAGE / layer).rglob("*.py"))


def test_the_import_scan_sees_every_form_of_import():
    """The scan itself, on the forms an upward import can take (else the next test is moot)."""
    cases = {
        "from .. import dale as dale_policy": "eisnn.dale",
        "from ..init import is_initialized": "eisnn.init",
        "from eisnn.train.config import TrainConfig": "eisnn.train.config",
        "import eisnn.baselines": "eisnn.baselines",
        "def f():\n    from ...cli import main": "eisnn.cli.main",
    }
    for source, module in cases.items():
        found = _imported_modules(source, "eisnn.nn.sub" if "..." in source else "eisnn.nn")
        assert module in found and _upward(found), source
    downward = "from ..functional import lif\nfrom . import ei"
    assert not _upward(_imported_modules(downward, "eisnn.nn"))
    assert _imports_of(PACKAGE / "dale.py") >= {"eisnn.nn.dale_parametrization"}


@pytest.mark.parametrize("path", _lower_layer_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functional_nn_models_import_nothing_above_them(path):
    upward = _upward(_imports_of(path))
    assert not upward, f"{path.relative_to(PACKAGE)} imports from a layer above it: {upward}"


def test_moved_names_stay_importable_where_users_find_them():
    from eisnn.nn import dale_parametrization

    for name in ("POLICIES", "check_policy", "reparametrize_", "assign_", "is_reparametrized"):
        assert getattr(eisnn.dale, name) is getattr(dale_parametrization, name)
    assert eisnn.is_initialized is eisnn.init.is_initialized is eisnn.nn.is_initialized


TODAY = {  # every model name of the registry before the baselines moved out of nn/models
    *(
        f"{kind}_{arch}"
        for kind in ("ei", "bn", "tebn", "plain")
        for arch in (
            "vgg8",
            "vgg11",
            "vgg16",
            "vgg19",
            "resnet18",
            "resnet34",
            "resnet50",
            "resnet19",
            "mlp",
        )
    ),
    "ei_rnn",
    "plain_rnn",
    "dann_vgg16",
    "backeisnn_cnn5",
}


def test_importing_eisnn_registers_every_model_and_kind():
    """tebn_vgg8: a kind registered after the architecture; ei_resnet19: an architecture
    registered after the kind; both by eisnn.baselines."""
    assert set(list_models()) == TODAY
    assert kind_names() == ["bn", "ei", "plain", "tebn"]
    tebn_vgg = eisnn.models.create_model("tebn_vgg8", 3, 2, 2, width=1 / 16)
    assert isinstance(tebn_vgg.stem.current[1], TEBN)
    model = eisnn.models.create_model("ei_resnet19", 3, 2, 2, width=1 / 16)
    assert isinstance(model.stem.current, EIConv2d)


def _shapes(kind_name: str) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module | None]:
    options = {"ei_ratio": 2, "inhibitory": "lif", "init": "standard"}
    kind = make_kind(kind_name, options, time_steps=2)
    assert kind.name == kind_name
    conv, linear, readout = kind.conv(3, 8, 3, 2, 1), kind.linear(12, 6), kind.readout(6, 4)
    x = torch.rand(4, 3, 6, 6)
    assert conv(x).shape == (4, 8, 3, 3)
    assert linear(torch.rand(4, 12)).shape == (4, 6) and readout(torch.rand(4, 6)).shape == (4, 4)
    recurrent = kind.recurrent(5, 7, NeuronOptions(tau=3.0)) if kind.recurrent else None
    return conv, linear, readout, recurrent


def test_the_ei_kind_builds_e_i_layers_with_its_options():
    conv, linear, readout, recurrent = _shapes("ei")
    assert isinstance(conv, EIConv2d) and conv.stride == (2, 2) and conv.padding == (1, 1)
    assert isinstance(linear, EILinear) and not linear.readout
    assert conv.n_inhibitory == 4 and conv.i_population.time_steps == 2
    assert isinstance(readout, EILinear) and readout.readout and readout.i_population is None
    assert readout.n_inhibitory == 2  # the ratio's I count, the paper's ReLU I units
    assert isinstance(recurrent, EIRecurrent) and recurrent.lif.tau == 3.0
    assert recurrent.n_inhibitory == 3 and recurrent.i_population is not None


@pytest.mark.parametrize(
    "kind_name, conv_type, norm_type, recurrent_type",
    [
        ("bn", ConvBN, LinearBN, None),
        ("tebn", ConvTEBN, TEBN, None),
        ("plain", nn.Conv2d, nn.Linear, PlainRecurrent),
    ],
)
def test_the_other_kinds_build_their_layers(kind_name, conv_type, norm_type, recurrent_type):
    conv, linear, readout, recurrent = _shapes(kind_name)
    assert isinstance(conv, conv_type)
    assert isinstance(linear, norm_type) or isinstance(linear[-1], norm_type)
    assert type(readout) is nn.Linear and readout.bias is not None
    if kind_name == "plain":
        assert conv.bias is None and linear.bias is None
    if kind_name == "tebn":
        assert conv[1].T == 2 and linear[1].T == 2
    assert (recurrent is None) == (recurrent_type is None)
    if recurrent_type is not None:
        assert isinstance(recurrent, recurrent_type) and recurrent.lif.tau == 3.0


def test_kind_errors():
    with pytest.raises(ValueError, match="unknown layer kind 'gn'"):
        make_kind("gn")
    with pytest.raises(ValueError, match="tebn layer kind needs time_steps"):
        make_kind("tebn", time_steps=0)
    with pytest.raises(ValueError, match="recurrent networks come in kinds"):
        eisnn.models.RecurrentSNN(make_kind("bn"), 3, 1, 2, image_size=4)
    with pytest.raises(ValueError, match="unknown model 'bn_rnn'"):
        eisnn.models.create_model("bn_rnn", 3, 1, 2)


def test_spiking_neurons_declare_themselves():
    assert all(is_spiking_neuron(m) for m in (LIF(), HardResetLIF(), BackEINeuron(2)))
    assert not any(is_spiking_neuron(m) for m in (EILinear(2, 4), nn.ReLU(), TEBN(2, 1)))
    model = eisnn.models.create_model("backeisnn_cnn5", 10, 3, 2, width=1 / 16)
    kinds = [type(m).__name__ for m in spiking_layers(model).values()]
    assert kinds == ["BackEINeuron"] * 3 + ["HardResetLIF"] * 2
