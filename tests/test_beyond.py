"""Options beyond the paper: spiking I units, any E:I ratio, recurrent E-I layers, Dale policy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn.functional import lif_multistep_eager, spike
from eisnn.models import create_model
from eisnn.nn import EIConv2d, EILinear, EIRecurrent, PlainRecurrent, inhibitory_count
from eisnn.train.config import ConfigError, load_config
from eisnn.train.factory import build_model

T, B = 4, 6


def _spikes(*shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


# --- E:I ratio ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_e, ratio, n_i",
    [(64, 4, 16), (100, 3, 33), (100, 16, 6), (10, 16, 1), (64, 1, 64), (10, 2.5, 4)],
)
def test_inhibitory_count_rounds_down_with_at_least_one(n_e, ratio, n_i):
    assert inhibitory_count(n_e, ratio) == n_i
    assert EILinear(8, n_e, ei_ratio=ratio).w_ei.shape == (n_e, n_i)


def test_n_inhibitory_given_directly():
    layer = EIConv2d(3, 10, 3, ei_ratio=4, n_inhibitory=7)
    assert (
        layer.w_ie.shape == (7, 3, 3, 3) and layer.w_ei.shape == (10, 7) and layer.g_i.shape == (7,)
    )
    with pytest.raises(ValueError, match="n_inhibitory"):
        EILinear(4, 10, n_inhibitory=0)
    with pytest.raises(ValueError, match="ei_ratio"):
        EILinear(4, 10, ei_ratio=0.5)


# --- spiking inhibitory units ------------------------------------------------------------------


def test_default_layer_has_no_new_state():
    keys = set(EILinear(8, 16).state_dict())
    assert keys == {
        "w_ee",
        "w_ie",
        "w_ei",
        "g_i",
        "g_e",
        "b_e",
        "initialized",
        "init_scale",
        "init_gain",
    }


def test_lif_inhibitory_needs_time_steps_and_a_known_kind():
    with pytest.raises(ValueError, match="time_steps"):
        EILinear(8, 16, inhibitory="lif")
    with pytest.raises(ValueError, match="inhibitory must be"):
        EILinear(8, 16, inhibitory="tanh")


def test_spiking_inhibition_matches_explicit_computation():
    """I spikes, not I_I, drive both paths:
    I_int = g_E (I_EE - W_EI s_I) / (g_L + W_EI g_I s_I) + b_E."""
    torch.manual_seed(0)
    layer = EILinear(20, 16, inhibitory="lif", tau_i=3.0, v_threshold_i=0.8, time_steps=T)
    x = _spikes(T * B, 20)
    eisnn.ei_init(layer, x)
    with torch.no_grad():
        layer.b_e.uniform_(-0.1, 0.1)
        layer.g_e.uniform_(0.5, 1.5)
    out = layer(x)
    assert out.shape == (T * B, 16)
    i_ee, i_i = x @ layer.w_ee.t(), x @ layer.w_ie.t()
    s_i = lif_multistep_eager(i_i.view(T, B, -1), 3.0, 0.8).view(T * B, -1)
    expected = (
        layer.g_e
        * (i_ee - s_i @ layer.w_ei.t())
        / (layer.i_leak + (s_i * layer.g_i) @ layer.w_ei.t())
        + layer.b_e
    )
    torch.testing.assert_close(out, expected)
    assert 0 < s_i.mean() < 1  # the I units spike, and not always


def test_spiking_inhibition_init_uses_the_i_population_output():
    torch.manual_seed(1)
    layer = EILinear(30, 24, inhibitory="lif", time_steps=T)
    x = _spikes(T * B, 30, p=0.4, seed=3)
    g = torch.Generator().manual_seed(5)
    eisnn.ei_init(layer, x, generator=g)
    # the paper's W_IE (same draws), rescaled so that E[I_I] = threshold;
    # W_EI = (E[paper I_I] / E[s_I]) / n_I
    paper = EILinear(30, 24)
    eisnn.ei_init(paper, x, generator=torch.Generator().manual_seed(5))
    paper_mean = (x @ paper.w_ie.detach().t()).double().mean()
    torch.testing.assert_close(layer.w_ie, paper.w_ie.detach() * float(1.0 / paper_mean))
    i_i = x @ layer.w_ie.detach().t()
    torch.testing.assert_close(i_i.double().mean(), torch.tensor(1.0, dtype=torch.float64))
    rate = lif_multistep_eager(i_i.view(T, B, -1)).double().mean()
    balance = paper_mean / rate
    torch.testing.assert_close(layer.init_i_balance, balance)
    torch.testing.assert_close(
        layer.w_ei, torch.full_like(layer.w_ei, float(balance) / layer.n_inhibitory)
    )
    torch.testing.assert_close(layer.g_i, paper.g_i)


def test_spiking_inhibition_disables_static_shortcut_and_checks_T():
    """A static input must give exactly what the same frame repeated T times gives (the I LIF has
    dynamics)."""
    torch.manual_seed(2)
    model = create_model("ei_mlp", 5, 1, T, image_size=4, hidden=(12,), inhibitory="lif")
    x = torch.rand(B, 1, 4, 4)
    eisnn.ei_init(model, x)
    frames = x.unsqueeze(1).expand(B, T, 1, 4, 4)
    torch.testing.assert_close(model(x), model(frames))
    with pytest.raises(ValueError, match="T=4"):
        model(torch.rand(B, T + 1, 1, 4, 4))
    assert model.head.module.i_population is None  # the readout keeps ReLU I units


# --- Dale policy ------------------------------------------------------------------------------


def test_reparam_state_dict_and_init_values():
    x = _spikes(T * B, 12)
    clamp = EILinear(12, 8)
    reparam = EILinear(12, 8, dale="reparam")
    eisnn.ei_init(clamp, x, generator=torch.Generator().manual_seed(0))
    eisnn.ei_init(reparam, x, generator=torch.Generator().manual_seed(0))
    keys = set(reparam.state_dict())
    assert "parametrizations.w_ee.original" in keys and "w_ee" not in keys and "b_e" in keys
    for name in ("w_ee", "w_ie", "w_ei", "g_i", "g_e", "b_e"):
        torch.testing.assert_close(
            getattr(reparam, name), getattr(clamp, name), rtol=1e-5, atol=1e-6
        )
    torch.testing.assert_close(reparam(x), clamp(x), rtol=1e-4, atol=1e-5)
    assert eisnn.dale.constrained_parameters(reparam) == []
    with pytest.raises(ValueError, match="dale must be"):
        EILinear(4, 4, dale="abs")


def test_reparam_keeps_dale_without_projection_clamp_projects():
    for policy in ("clamp", "reparam"):
        torch.manual_seed(0)
        layer = EILinear(12, 8, dale=policy)
        x = _spikes(T * B, 12)
        eisnn.ei_init(layer, x)
        opt = torch.optim.SGD(layer.parameters(), lr=100.0)
        eisnn.dale.attach(opt, layer)
        (layer(x) * torch.randn(T * B, 8)).sum().backward()
        opt.step()
        for name in eisnn.nn.DALE_PARAMETERS:
            assert bool((getattr(layer, name) >= 0).all()), (policy, name)
        if policy == "reparam":
            assert (
                float(layer.parametrizations.w_ee.original.detach().min()) < 0
            )  # the free parameter did go negative


# --- recurrent E-I layer ------------------------------------------------------------------------


def _lif(h_in, v, tau=2.0, th=1.0):
    h = v - v / tau + h_in
    s = spike(h - th)
    return s, h - th * s.detach()


@pytest.mark.parametrize("inhibitory", ["relu", "lif"])
def test_recurrent_layer_equals_explicit_time_loop(inhibitory):
    torch.manual_seed(3)
    n_in, n_h = 10, 16
    layer = EIRecurrent(n_in, n_h, inhibitory=inhibitory, time_steps=T)
    x = _spikes(T, B, n_in, p=0.5)
    eisnn.ei_init(layer, x)
    assert eisnn.is_initialized(layer)
    with torch.no_grad():
        layer.b_e.uniform_(0.0, 0.2)
    out = layer(x)
    n_i = layer.n_inhibitory
    w_in_e, w_rec_e = layer.w_ee[:, :n_in], layer.w_ee[:, n_in:]
    w_in_i, w_rec_i = layer.w_ie[:, :n_in], layer.w_ie[:, n_in:]
    s, v, v_i, rows = torch.zeros(B, n_h), torch.zeros(B, n_h), torch.zeros(B, n_i), []
    for t in range(T):
        i_ee = x[t] @ w_in_e.t() + s @ w_rec_e.t()
        i_i = x[t] @ w_in_i.t() + s @ w_rec_i.t()
        if inhibitory == "lif":
            s_i, v_i = _lif(i_i, v_i)
            div = layer.i_leak + (s_i * layer.g_i) @ layer.w_ei.t()
        else:
            s_i = i_i
            div = (s_i * layer.g_i) @ layer.w_ei.t()
            div = torch.where(
                div == 0, div.masked_fill(div == 0, float("inf")).amin(1, keepdim=True), div
            )
        current = layer.g_e * (i_ee - s_i @ layer.w_ei.t()) / div + layer.b_e
        s, v = _lif(current, v)
        rows.append(s)
    torch.testing.assert_close(out, torch.stack(rows))
    assert out.shape == (T, B, n_h) and 0 < float(out.detach().mean()) < 1
    out.sum().backward()
    assert layer.w_ee.grad[:, n_in:].abs().sum() > 0  # the recurrent weights learn


def test_recurrent_layer_keeps_dale_and_plain_twin_runs():
    torch.manual_seed(4)
    layer = EIRecurrent(6, 8)
    x = _spikes(T, B, 6, p=0.5)
    eisnn.ei_init(layer, x)
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    eisnn.dale.attach(opt, layer)
    (layer(x) * torch.randn(T, B, 8)).sum().backward()
    opt.step()
    assert all(bool((p >= 0).all()) for p in eisnn.dale.constrained_parameters(layer))
    assert PlainRecurrent(6, 8)(x).shape == (T, B, 8)


@pytest.mark.parametrize("name", ["ei_rnn", "plain_rnn"])
def test_sequence_models_on_digits_seq(name):
    ei_options = ["ei_ratio=3"] if name.startswith("ei_") else []
    cfg = load_config(None, [f"model={name}", "dataset=digits_seq", "T=8", *ei_options])
    model = build_model(cfg)
    from eisnn.data import create_dataset

    ds = create_dataset("digits_seq", "unused", train=False, T=8)
    x = torch.stack([ds[i][0] for i in range(16)])
    assert x.shape == (16, 8, 8, 1, 1)
    eisnn.ei_init(model, x)
    logits = model(x)
    assert logits.shape == (16, 10)
    F.cross_entropy(logits, torch.zeros(16, dtype=torch.long)).backward()


def test_config_keys_reach_the_layers():
    cfg = load_config(
        None,
        [
            "model=ei_mlp",
            "dataset=digits",
            "T=2",
            "inhibitory=lif",
            "tau_i=3",
            "dale=reparam",
            "n_inhibitory=5",
            "ei_ratio=2.5",
        ],
    )
    model = build_model(cfg)
    hidden = model.stem.current[1]
    assert (
        hidden.n_inhibitory == 5 and hidden.i_population.lif.tau == 3.0 and hidden.dale == "reparam"
    )
    assert hidden.i_population.time_steps == 2
    assert model.head.module.n_inhibitory == inhibitory_count(10, 2.5)
    with pytest.raises(ConfigError, match="inhibitory"):
        load_config(None, ["inhibitory=tanh"])
    with pytest.raises(ConfigError, match="dale"):
        load_config(None, ["dale=abs"])
