"""The E-I layers in PyTorch's shape: shape arguments as in nn.Conv2d, keyword-only E-I options
(EIOptions), and a repr that shows only what differs from the defaults."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eisnn.nn import EIConv2d, EILinear, EIOptions
from eisnn.nn.ei_options import HIDDEN_ONLY_OPTIONS


def _randomize_lateral(layer: EIConv2d | EILinear, seed: int = 0) -> None:
    """Positive random W_EI, g_I, g_E and a signed b_E, so that every term of the output matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("w_ei", "g_i", "g_e"):
            p = getattr(layer, name)
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5)
        layer.b_e.copy_(torch.randn(layer.b_e.shape, generator=gen, dtype=layer.b_e.dtype))


def _by_hand(layer: EIConv2d, x: torch.Tensor, **conv: object) -> torch.Tensor:
    """``g_E (I_EE - W_EI I_I) / (W_EI (g_I I_I) + eps) + b_E`` with ``[I_EE; I_I]`` from one
    ``F.conv2d`` of the stacked weights ``[W_EE; W_IE]``."""
    both = F.conv2d(x, torch.cat([layer.w_ee, layer.w_ie]), **conv)
    i_ee, i_i = both[:, : layer.n_excitatory], both[:, layer.n_excitatory :]
    sub = torch.einsum("ei,nihw->nehw", layer.w_ei, i_i)
    div = torch.einsum("ei,nihw->nehw", layer.w_ei, layer.g_i.view(1, -1, 1, 1) * i_i)
    g_e, b_e = layer.g_e.view(1, -1, 1, 1), layer.b_e.view(1, -1, 1, 1)
    return g_e * (i_ee - sub) / (div + layer.epsilon) + b_e


def test_conv_with_stride_padding_dilation_pairs_is_the_stacked_conv2d():
    conv = {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)}
    layer = EIConv2d(3, 8, (3, 5), **conv, stabilization="epsilon", init="standard").double()
    _randomize_lateral(layer)
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    expected = _by_hand(layer, x, **conv)
    assert expected.shape == (2, 8, 4, 11)  # rows (9 + 2 - 2*2 - 1) // 2 + 1
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_conv_shape_arguments_are_normalized_to_pairs():
    layer = EIConv2d(3, 8, 3, stride=2, padding=1, dilation=2)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == (
        (3, 3),
        (2, 2),
        (1, 1),
        (2, 2),
    )
    assert layer.w_ee.shape == (8, 3, 3, 3) and layer.fan_in == 27


@pytest.mark.parametrize("padding, explicit", [("same", (2, 2)), ("valid", (0, 0))])
def test_conv_padding_by_name(padding, explicit):
    """'same' keeps the size (kernel 3x5, dilation 2x1: 2 rows and 2 columns each side)."""
    layer = EIConv2d(
        2, 6, (3, 5), padding=padding, dilation=(2, 1), stabilization="epsilon", init="standard"
    ).double()
    _randomize_lateral(layer, seed=1)
    x = torch.rand(2, 2, 7, 8, dtype=torch.float64)
    expected = _by_hand(layer, x, padding=explicit, dilation=(2, 1))
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    if padding == "same":
        assert layer(x).shape[-2:] == x.shape[-2:]


def test_conv_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="groups=1"):
        EIConv2d(4, 8, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        EIConv2d(4, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        EIConv2d(4, 8, 3, padding="full")


def test_e_i_options_are_keyword_only():
    with pytest.raises(TypeError):
        EIConv2d(3, 8, 3, 1, 0, 1, 1, 4)  # ei_ratio given positionally
    with pytest.raises(TypeError):
        EILinear(4, 8, 4)
    with pytest.raises(TypeError, match=r"unknown E-I option\(s\) \['eiratio'\]"):
        EILinear(4, 8, eiratio=2)
    assert EILinear(4, 8, ei_ratio=2).n_inhibitory == 4


def test_repr_of_a_default_layer_shows_no_e_i_option():
    assert EIConv2d(3, 8, 3).extra_repr() == "3, 8, kernel_size=(3, 3), n_I=2"
    assert EILinear(4, 8).extra_repr() == "in_features=4, out_features=8, n_I=2"


def test_repr_shows_exactly_the_changed_options():
    layer = EIConv2d(
        3, 8, 3, stride=2, padding=1, ei_ratio=2, stabilization="epsilon", dale="reparam"
    )
    assert layer.extra_repr() == (
        "3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), n_I=4, ei_ratio=2, "
        "stabilization='epsilon', dale='reparam'"
    )
    assert "dilation=(2, 1)" in EIConv2d(3, 8, 3, dilation=(2, 1)).extra_repr()


CHANGED = {  # one non-default value per option the repr shows
    "ei_ratio": 2,
    "readout": True,
    "stabilization": "none",
    "epsilon": 1e-3,
    "ste": False,
    "scale_w_ei_grad": False,
    "init": "standard",
    "inhibitory": "lif",
    "dale": "reparam",
}


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_repr_shows_each_changed_option_alone(name):
    extra = {"time_steps": 2} if name == "inhibitory" else {}  # spiking I units need T
    text = EILinear(4, 8, **{name: CHANGED[name]}, **extra).extra_repr()
    n_i = 4 if name == "ei_ratio" else 2
    assert text == f"in_features=4, out_features=8, n_I={n_i}, {name}={CHANGED[name]!r}"


def test_every_option_is_covered_by_the_repr_or_by_its_population():
    """No option is silently left out: the repr shows it, or n_I / the I population's repr does."""
    shown_elsewhere = {
        "n_inhibitory",
        "tau_i",
        "v_threshold_i",
        "surrogate_i",
        "alpha_i",
        "time_steps",
    }
    assert set(EIOptions.names()) == set(CHANGED) | shown_elsewhere
    layer = EILinear(4, 8, inhibitory="lif", time_steps=3, tau_i=5.0, n_inhibitory=3)
    assert "n_I=3" in layer.extra_repr()
    assert "time_steps=3" in repr(layer.i_population) and "tau=5.0" in repr(layer.i_population)


def test_options_record_validates_and_knows_its_defaults():
    assert EIOptions().changed() == {}
    assert EIOptions(ei_ratio=8.0, ste=False).changed() == {"ei_ratio": 8.0, "ste": False}
    for bad, match in (
        ({"stabilization": "soft"}, "stabilization"),
        ({"init": "lsuv"}, "init"),
        ({"dale": "abs"}, "dale"),
        ({"ei_ratio": 0.5}, "ei_ratio"),
        ({"n_inhibitory": 0}, "n_inhibitory"),
    ):
        with pytest.raises(ValueError, match=match):
            EIOptions(**bad)
    hidden = EIOptions(
        ei_ratio=2,
        n_inhibitory=5,
        inhibitory="lif",
        tau_i=3.0,
        time_steps=4,
        stabilization="epsilon",
    )
    readout = hidden.for_readout()
    assert readout.readout and readout.ei_ratio == 2 and readout.stabilization == "epsilon"
    assert all(getattr(readout, name) == getattr(EIOptions(), name) for name in HIDDEN_ONLY_OPTIONS)
    layer = EIConv2d(3, 8, 3, ei_ratio=2, ste=False)
    assert layer.options == EIOptions(ei_ratio=2, ste=False)
    assert (layer.ei_ratio, layer.ste, layer.init_mode, layer.dale) == (2, False, "ei", "clamp")
