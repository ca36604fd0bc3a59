"""The comparison systems: TEBN, ResNet-19, DANN, BackEISNN, and their losses (BASELINES.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import eisnn
from eisnn.baselines import (
    TEBN,
    BackEINeuron,
    DANNConv2d,
    DANNLinear,
    HardResetLIF,
    PreSpikeResidualBlock,
    rect_sign,
    rect_spike,
)
from eisnn.dale import constrained_parameters, split_parameters
from eisnn.losses import get_loss, mse_rates
from eisnn.models import create_model, list_models, make_kind
from eisnn.nn import EIConv2d

BASELINES = ("tebn_resnet19", "bn_resnet19", "ei_resnet19", "dann_vgg16", "backeisnn_cnn5")

# ---------------------------------------------------------------- TEBN


def _merged(T: int = 3, B: int = 4, C: int = 5) -> torch.Tensor:
    return torch.randn(T * B, C, 6, 6) * 2 + 1


def test_tebn_with_unit_scales_is_batchnorm_over_time_and_batch():
    T, x = 3, _merged()
    tebn, bn = TEBN(5, T), nn.BatchNorm2d(5)
    with torch.no_grad():
        for layer in (tebn, bn):
            layer.weight.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
            layer.bias.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(2))
    for _ in range(2):
        torch.testing.assert_close(tebn(x), bn(x))
    torch.testing.assert_close(tebn.running_mean, bn.running_mean)
    torch.testing.assert_close(tebn.running_var, bn.running_var)
    assert int(tebn.num_batches_tracked) == 2
    tebn.eval(), bn.eval()
    torch.testing.assert_close(tebn(x), bn(x))


def test_tebn_scales_each_time_step():
    T, x = 3, _merged()
    tebn, bn = TEBN(5, T), nn.BatchNorm2d(5)
    with torch.no_grad():
        tebn.p.copy_(torch.tensor([0.5, 1.0, 3.0]))
    out, ref = tebn(x).view(T, 4, 5, 6, 6), bn(x).view(T, 4, 5, 6, 6)
    for t, p in enumerate((0.5, 1.0, 3.0)):
        torch.testing.assert_close(out[t], p * ref[t])
    assert not torch.allclose(out[0], ref[0])
    out.sum().backward()
    assert tebn.p.grad is not None and tebn.p.grad.shape == (T,)


def test_tebn_eval_uses_running_statistics():
    T = 2
    tebn = TEBN(3, T, momentum=0.5)
    for seed in range(3):
        tebn(torch.randn(T * 8, 3, generator=torch.Generator().manual_seed(seed)) * 3 + 2)
    with torch.no_grad():
        tebn.p.copy_(torch.tensor([2.0, -1.0]))
        tebn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        tebn.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    tebn.eval()
    x = torch.randn(T * 5, 3)
    xhat = (x - tebn.running_mean) / torch.sqrt(tebn.running_var + tebn.eps)
    expected = (xhat * tebn.weight + tebn.bias).view(T, 5, 3) * torch.tensor([2.0, -1.0]).view(
        T, 1, 1
    )
    torch.testing.assert_close(tebn(x), expected.view(T * 5, 3))
    assert not torch.allclose(tebn.running_mean, torch.zeros(3))


def test_tebn_rejects_a_merged_batch_of_another_length():
    with pytest.raises(ValueError, match="T=3"):
        TEBN(5, 3)(torch.randn(8, 5, 2, 2))
    with pytest.raises(ValueError, match="tebn layer kind needs time_steps"):
        make_kind("tebn")


def test_tebn_network_applies_per_step_scales_to_static_input():
    """The direct-encoding stem must not broadcast one current over time when TEBN scales each
    step."""
    T = 3
    model = create_model("tebn_vgg8", 4, 3, T, width=0.125)
    stem_norm = model.stem.current[1]
    x = torch.rand(2, 3, 32, 32)
    frames = x.unsqueeze(1).expand(2, T, 3, 32, 32)
    unit_scales = model(x)
    with torch.no_grad():
        stem_norm.p.copy_(torch.tensor([0.2, 1.0, 5.0]))
    torch.testing.assert_close(model(x), model(frames))
    assert not torch.allclose(model(x), unit_scales)
    with pytest.raises(ValueError, match="built for T=3"):
        model(torch.rand(2, 2, 3, 32, 32))


# ---------------------------------------------------------------- ResNet-19


def test_resnet19_shapes():
    model = create_model("ei_resnet19", 10, 3, 4)
    convs = [m for m in model.modules() if isinstance(m, EIConv2d)]
    assert sum(c.kernel_size == (3, 3) for c in convs) == 17 and len(convs) == 17 + 2
    assert [c.out_channels for c in convs if c.kernel_size == (3, 3)] == [128] * 7 + [256] * 6 + [
        512
    ] * 4
    linears = [
        m for m in create_model("tebn_resnet19", 10, 3, 4).modules() if isinstance(m, nn.Linear)
    ]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 10)]
    assert (
        sum(isinstance(m, TEBN) for m in create_model("tebn_resnet19", 10, 3, 4).modules())
        == 17 + 2 + 1
    )


def test_resnet19_block_adds_the_shortcut_before_the_neuron():
    block = PreSpikeResidualBlock(make_kind("plain"), eisnn.models.NeuronOptions(), 0.0, 4, 4, 1)
    x = (torch.rand(3, 2, 4, 5, 5) < 0.5).float()
    lif = eisnn.nn.LIF()
    hidden = lif(block.unit.current(x.flatten(0, 1)).view_as(x))
    expected = lif(block.current(hidden.flatten(0, 1)).view_as(x) + x)
    torch.testing.assert_close(block(x), expected)


# ---------------------------------------------------------------- DANN


def _hand_dann() -> DANNLinear:
    layer = DANNLinear(2, 2, 1).double()
    with torch.no_grad():
        layer.w_ee.copy_(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        layer.w_ie.copy_(torch.tensor([[1.0, 1.0]]))
        layer.w_ei.copy_(torch.tensor([[1.0], [0.5]]))
        layer.alpha.fill_(math.log(2.0))
        layer.g.copy_(torch.tensor([2.0, 1.0]))
        layer.b.copy_(torch.tensor([0.5, -1.0]))
    return layer


def test_dann_layer_matches_its_equations_by_hand():
    # zE = (5, 3), zI = 3, zhat = (5 - 3, 3 - 1.5), gamma = (2*3, 0.5*2*3) + 1e-8,
    # z = g zhat / gamma + b
    out = _hand_dann()(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    expected = torch.tensor(
        [[2 * 2 / (6 + 1e-8) + 0.5, 1.5 / (3 + 1e-8) - 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


def test_dann_conv_is_the_dense_layer_at_every_position():
    conv = DANNConv2d(3, 6, 2, first=True).double()
    dense = DANNLinear(27, 6, 2).double()
    with torch.no_grad():
        dense.w_ee.copy_(conv.w_ee.flatten(1)), dense.w_ie.copy_(conv.w_ie.flatten(1))
        for name in ("w_ei", "alpha", "g", "b"):
            getattr(dense, name).copy_(
                getattr(conv, name) * (1.0 + torch.rand_like(getattr(conv, name)))
            )
            getattr(conv, name).copy_(getattr(dense, name))
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    patches = F.unfold(x, 3, padding=1).transpose(1, 2)  # [B, positions, 27]
    expected = dense(patches.reshape(-1, 27)).view(2, 25, 6).transpose(1, 2).reshape(2, 6, 5, 5)
    torch.testing.assert_close(conv(x), expected)


def test_dann_gradient_corrections_are_exact():
    corrected = DANNConv2d(4, 8, 3).double()
    plain = DANNConv2d(4, 8, 3, corrected_gradients=False).double()
    plain.load_state_dict(corrected.state_dict())
    x = torch.rand(2, 4, 5, 5, dtype=torch.float64)
    target = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    for layer in (corrected, plain):
        (layer(x) - target).square().sum().backward()
    n_e, d = 8, 4 * 9
    divisors = {
        "w_ie": math.sqrt(n_e),
        "w_ei": d,
        "alpha": math.sqrt(n_e) * d,
        "w_ee": 1,
        "g": 1,
        "b": 1,
    }
    for name, divisor in divisors.items():
        g_plain = getattr(plain, name).grad
        assert g_plain.abs().max() > 0
        torch.testing.assert_close(
            getattr(corrected, name).grad, g_plain / divisor, rtol=1e-12, atol=0
        )


def test_dann_init():
    torch.manual_seed(3)
    hidden, first = DANNLinear(400, 500, 50), DANNLinear(400, 500, 50, first=True)
    for layer, scale in (
        (hidden, math.sqrt(2 * math.pi / (400 * (2 * math.pi - 1)))),
        (first, math.sqrt(1 / 800)),
    ):
        assert (
            abs(float(layer.w_ee.detach().mean()) / scale - 1) < 0.02
            and abs(float(layer.w_ie.detach().mean()) / scale - 1) < 0.05
        )
        assert bool((layer.w_ee >= 0).all())
    torch.testing.assert_close(
        hidden.alpha.exp(), torch.full((50,), math.sqrt((2 * math.pi - 1) / 400))
    )
    assert torch.equal(hidden.w_ei, torch.full((500, 50), 1 / 50))
    assert torch.equal(hidden.g, torch.ones(500)) and torch.equal(hidden.b, torch.zeros(500))
    single = DANNLinear(30, 10, 1)
    torch.testing.assert_close(single.w_ie, single.w_ee.mean(0, keepdim=True))
    assert torch.equal(single.w_ei, torch.ones(10, 1))


def test_dale_constrains_dann_parameters():
    layer = DANNLinear(6, 4, 2)
    constrained, free = split_parameters(layer)
    assert {id(p) for p in constrained} == {
        id(layer.w_ee),
        id(layer.w_ie),
        id(layer.w_ei),
        id(layer.g),
    }
    assert {id(p) for p in free} == {id(layer.alpha), id(layer.b)}
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(-1.0)
    eisnn.dale.project_(layer)
    assert all(bool((p == 0).all()) for p in constrained_parameters(layer))
    assert bool((layer.alpha == -1).all()) and bool((layer.b == -1).all())


def test_dann_vgg16_plan_and_train_equals_eval():
    model = create_model("dann_vgg16", 10, 3, 1, width=1 / 8, dropout=0.0)
    convs = [m for m in model.modules() if isinstance(m, DANNConv2d)]
    assert [(c.n_excitatory, c.n_inhibitory) for c in convs] == [(8, 1)] * 2 + [(16, 2)] * 2 + [
        (32, 5)
    ] * 3 + [(64, 10)] * 6
    assert convs[0].first and not any(c.first for c in convs[1:])
    dense = [m for m in model.modules() if isinstance(m, DANNLinear)]
    assert [(m.in_features, m.n_excitatory, m.n_inhibitory) for m in dense] == [
        (1024, 512, 51),
        (512, 512, 51),
        (512, 10, 1),
    ]
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(model.train()(x), model.eval()(x))
    frames = x.unsqueeze(1).expand(3, 2, 3, 32, 32)
    torch.testing.assert_close(model(frames), model(x))


# ---------------------------------------------------------------- BackEISNN


def _backei_loop(neuron: BackEINeuron, currents: torch.Tensor) -> torch.Tensor:
    """The BackEI neuron written as a plain loop, straight from its equations."""
    v = torch.zeros_like(currents[0])
    s = torch.zeros_like(currents[0])
    out = []
    for i_t in currents:
        gate = torch.sigmoid(F.conv2d(s, neuron.conv_b.weight, neuron.conv_b.bias, padding=1))
        v = 0.2 * v + gate * i_t
        e = torch.sign(F.conv2d(v, neuron.conv_ei.weight, neuron.conv_ei.bias, padding=1))
        o = (v > 0.5).float()
        v = torch.where(o > 0, torch.zeros_like(v), v)
        s = e * o
        out.append(s)
    return torch.stack(out)


def test_backei_neuron_matches_a_plain_loop():
    neuron = BackEINeuron(3)
    currents = torch.rand(6, 2, 3, 5, 5) * 2
    with torch.no_grad():
        out = neuron(currents)
    torch.testing.assert_close(out, _backei_loop(neuron, currents), rtol=0, atol=0)
    assert set(out.unique().tolist()) == {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_backei_neuron_by_hand(sign):
    """Gate sigmoid(0) = 1/2; sign set by the conv_ei bias; hard reset after each spike."""
    neuron = BackEINeuron(1)
    with torch.no_grad():
        for conv in (neuron.conv_b, neuron.conv_ei):
            conv.weight.zero_()
        neuron.conv_b.bias.zero_()
        neuron.conv_ei.bias.fill_(sign)
    currents = torch.tensor([0.8, 0.8, 1.2, 0.0, 1.2]).view(5, 1, 1, 1, 1)
    # V: 0.4 (no spike), 0.08 + 0.4 = 0.48 (no), 0.096 + 0.6 = 0.696 (spike, reset to 0), 0 (no),
    # 0.6 (spike)
    expected = sign * torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0]).view(5, 1, 1, 1, 1)
    torch.testing.assert_close(neuron(currents), expected, rtol=0, atol=0)


def test_backei_gate_reads_the_previous_signed_spikes():
    neuron = BackEINeuron(1)
    with torch.no_grad():
        neuron.conv_b.weight.zero_()
        neuron.conv_b.weight[0, 0, 1, 1] = 10.0  # gate ~ sigmoid(10 s_{t-1})
        neuron.conv_b.bias.zero_()
        neuron.conv_ei.weight.zero_()
        neuron.conv_ei.bias.fill_(-1.0)  # inhibitory: s = -1 after a spike, closing the gate
    currents = torch.full((3, 1, 1, 1, 1), 1.2)
    # t1: gate 1/2, V = 0.6 -> spike -1; t2: gate sigmoid(-10), V ~ 5e-5 -> none;
    # t3: gate 1/2, V ~ 0.6 -> spike
    torch.testing.assert_close(neuron(currents).flatten(), torch.tensor([-1.0, 0.0, -1.0]))


def test_hard_reset_lif_by_hand():
    x = torch.tensor([0.4, 0.4, 0.0, 0.6, 0.6]).view(5, 1)
    # V: 0.4, 0.48, 0.096, 0.6192 (spike, reset), 0.6 (spike)
    torch.testing.assert_close(HardResetLIF()(x).flatten(), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]))


def test_rectangular_surrogates():
    u = torch.tensor([-0.7, -0.3, 0.0, 0.3, 0.49, 0.7], requires_grad=True)
    window = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    for fn, forward in (
        (rect_spike, torch.tensor([0.0, 0, 0, 1, 1, 1])),
        (rect_sign, torch.tensor([-1.0, -1, 0, 1, 1, 1])),
    ):
        out = fn(u)
        assert torch.equal(out.detach(), forward)
        (grad,) = torch.autograd.grad(out.sum(), u)
        assert torch.equal(grad, window)


def test_backeisnn_outputs_rates_and_trains_with_mse():
    model = create_model("backeisnn_cnn5", 10, 3, 4, width=1 / 16, dropout=0.0)
    x = torch.rand(3, 3, 32, 32) * 4
    rates = model(x)
    assert rates.shape == (3, 10) and bool(((rates * 4) == (rates * 4).round()).all())
    assert bool((rates >= 0).all()) and bool((rates <= 1).all())
    loss = get_loss("mse_rates")(rates, torch.tensor([0, 1, 2]))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---------------------------------------------------------------- losses and registry


def test_losses():
    out = torch.tensor([[0.5, 0.25, 0.0], [1.0, 0.0, 0.75]])
    target = torch.tensor([1, 0])
    expected = ((0.5**2 + 0.75**2 + 0) + (0 + 0 + 0.75**2)) / 6
    torch.testing.assert_close(mse_rates(out, target), torch.tensor(expected))
    torch.testing.assert_close(get_loss("cross_entropy")(out, target), F.cross_entropy(out, target))
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")


@pytest.mark.parametrize("name", BASELINES)
def test_one_training_step_keeps_dale(name):
    """Each baseline is in the registry and takes a full step: init, forward, loss, backward, SGD,
    Dale."""
    assert name in list_models()
    size, T = (8, 2) if "resnet" in name else (32, 2)
    model = create_model(
        name,
        5,
        3,
        1 if name.startswith("dann") else T,
        image_size=size,
        width=1 / 16,
        ei_ratio=4,
        tau=2.0,
    )
    x, y = torch.rand(4, 3, size, size), torch.tensor([0, 1, 2, 3])
    eisnn.ei_init(model, x)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    eisnn.dale.attach(optimizer, model)
    loss = get_loss("mse_rates" if name.startswith("backei") else "cross_entropy")(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and torch.isfinite(model(x)).all()
    assert all(bool((p >= 0).all()) for p in constrained_parameters(model))
    with pytest.raises(ValueError, match="unknown option"):
        create_model(name, 5, 3, T, depth=3)


CONFIG_DIR = Path(__file__).resolve().parents[1] / "src" / "eisnn" / "configs"
# BASELINES.md: model, T, optimizer, lr, momentum, weight decay, batch, epochs, extra keys
RECIPES = {
    "cifar10_tebn_resnet19": ("tebn_resnet19", 4, "sgd", 0.02, 0.9, 5e-4, 128, 300, {}),
    "cifar10_dann_vgg16": (
        "dann_vgg16",
        1,
        "sgd",
        0.01,
        0.0,
        0.0,
        128,
        300,
        {"augment": False, "dropout": 0.5},
    ),
    "cifar10_backeisnn_cnn5": (
        "backeisnn_cnn5",
        20,
        "adamw",
        1e-3,
        None,
        0.0,
        100,
        200,
        {"loss": "mse_rates", "dropout": 0.5},
    ),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_baseline_configs_hold_their_recipes(name):
    cfg = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    model, T, optimizer, lr, momentum, decay, batch, epochs, extra = RECIPES[name]
    assert (
        cfg["model"],
        cfg["dataset"],
        cfg["T"],
        cfg["optimizer"],
        cfg["batch_size"],
        cfg["epochs"],
    ) == (model, "cifar10", T, optimizer, batch, epochs)
    assert (
        cfg["lr"] == pytest.approx(lr)
        and cfg["weight_decay"] == pytest.approx(decay)
        and cfg["warmup_epochs"] == 0
    )
    assert momentum is None or cfg["momentum"] == pytest.approx(momentum)
    assert {k: cfg[k] for k in extra} == extra
    if "loss" in cfg:
        get_loss(cfg["loss"])
    create_model(
        cfg["model"], 10, 3, cfg["T"], width=1 / 16, dropout=cfg["dropout"], ei_ratio=4, tau=2.0
    )
