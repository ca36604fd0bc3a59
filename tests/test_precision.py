"""The precision policy under autocast (``eisnn.functional.precision``): the folded weight and the
float32 node compute the same maths as the plain path, and keep every E-I layer of VGG-8 within
2x the BN twin's worst layer error under CPU bf16 autocast, on identical inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn import functional as EF
from eisnn.diagnostics.precision import autocast_errors, relative_error
from eisnn.models import create_model
from eisnn.nn import LIF, ConvBN, EIConv2d, EILayer, EILinear, LinearBN


def _randomize_lateral(layer: EILayer, seed: int) -> None:
    """Non-uniform ``W_EI, g_I, g_E, b_E``, so that a wrong fold or gain would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("w_ei", "g_i", "g_e"):
            p = getattr(layer, name)
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.1)
        layer.b_e.copy_(torch.randn(layer.b_e.shape, generator=gen, dtype=layer.b_e.dtype))


@pytest.mark.parametrize(
    "layer, x, drive",
    [
        (
            EIConv2d(
                3, 8, 3, padding=1, init="standard", scale_w_ei_grad=False, dtype=torch.float64
            ),
            torch.rand(4, 3, 5, 5, dtype=torch.float64),
            lambda x, w: F.conv2d(x, w, padding=1),
        ),
        (
            EILinear(10, 8, init="standard", scale_w_ei_grad=False, dtype=torch.float64),
            torch.rand(6, 10, dtype=torch.float64),
            F.linear,
        ),
        (
            EILinear(
                10, 8, readout=True, init="standard", scale_w_ei_grad=False, dtype=torch.float64
            ),
            torch.rand(6, 10, dtype=torch.float64),
            F.linear,
        ),
    ],
    ids=["conv", "linear", "readout"],
)
def test_folded_weight_and_balanced_node_equal_the_layer_in_float64(layer, x, drive) -> None:
    _randomize_lateral(layer, 0)
    params = [layer.w_ee, layer.w_ie, layer.w_ei, layer.g_i, layer.g_e, layer.b_e]
    x = x.requires_grad_()
    ref = layer(x)
    currents = drive(x, EF.folded_weight(layer.w_ee, layer.w_ie, layer.w_ei))
    options = {"readout": layer.readout, "stabilization": layer.stabilization}
    out = EF.ei_integrate_balanced(
        currents, layer.n_excitatory, layer.w_ei, layer.g_i, layer.g_e, layer.b_e, **options
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    g = torch.randn_like(ref)
    want = torch.autograd.grad(ref, [x, *params], g, allow_unused=True)
    got = torch.autograd.grad(out, [x, *params], g, allow_unused=True)
    for w, o in zip(want, got):
        if w is None:  # a readout does not use g_I, g_E, b_E
            assert o is None or float(o.abs().max()) == 0.0
        else:
            torch.testing.assert_close(o, w, rtol=1e-9, atol=1e-12)


def test_autocast_layer_is_float32_out_and_close_in_value_and_gradient() -> None:
    torch.manual_seed(0)
    layer = EIConv2d(16, 32, 3, padding=1)
    x = (torch.rand(8, 16, 8, 8) < 0.3).float()
    eisnn.ei_init(layer, x)
    ref = layer(x)
    ref_grads = torch.autograd.grad(ref.square().mean(), list(layer.parameters()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
        grads = torch.autograd.grad(out.square().mean(), list(layer.parameters()))
    assert out.dtype == torch.float32
    assert relative_error(out, ref) < 1e-2
    for got, want in zip(grads, ref_grads):
        assert relative_error(got, want) < 5e-2


def test_autocast_layer_runs_the_balanced_fused_node_like_its_eager_tier() -> None:
    """Under autocast the layer's node is the fused operation's balanced mode (``tiers``); forced
    eager, ``ei_integrate_balanced`` on the same bf16 currents: the same values to float32
    rounding, and the same gradients to a few bf16 roundings (the float32 ``dL/d currents``, which
    differ in their last bits, enter the bf16 convolution's backward; the strict float64
    comparison is ``tests/test_fused.py``)."""
    torch.manual_seed(0)
    layer = EIConv2d(16, 32, 3, padding=1)
    x = (torch.rand(8, 16, 8, 8) < 0.3).float()
    eisnn.ei_init(layer, x)
    results = {}
    for tier in ("eager", "auto"):
        with EF.use_tier(tier), torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(x)
            grads = torch.autograd.grad(out.square().mean(), list(layer.parameters()))
        results[tier] = out, grads
    assert "eisnn_ei_fused_forward" in results["auto"][0].grad_fn.name()
    assert "eisnn_ei_fused_forward" not in results["eager"][0].grad_fn.name()
    (out, grads), (ref, ref_grads) = results["auto"], results["eager"]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, ref_grads):
        assert relative_error(got, want) < 3e-3


def test_lif_membrane_in_float32_under_autocast() -> None:
    x = torch.rand(4, 3, 50) * 1.5
    lif = LIF()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spikes = lif(x.bfloat16())
    assert spikes.dtype == torch.float32
    assert torch.equal(spikes, lif(x.bfloat16().float()))


def test_spiking_inhibition_runs_the_float32_node_under_autocast() -> None:
    torch.manual_seed(0)
    layer = EILinear(12, 8, inhibitory="lif", time_steps=2)
    x = torch.rand(2 * 16, 12)
    eisnn.ei_init(layer, x)
    ref = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32
    assert relative_error(out, ref) < 5e-2


def test_vgg8_e_i_layers_within_twice_the_bn_twins_worst_error_under_bf16() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32)
    ei = create_model("ei_vgg8", 10, 3, 2, width=0.25)
    eisnn.ei_init(ei, x)
    bn = create_model("bn_vgg8", 10, 3, 2, width=0.25).train()
    bn_worst = max(autocast_errors(bn, x, (ConvBN, LinearBN)).values())
    policy = autocast_errors(ei, x, (EILayer,))
    before = autocast_errors(ei, x, (EILayer,), lambda m, i: m.integrate(m.stacked_currents(i)))
    assert len(policy) == 6  # five convolutions and the readout
    ratios = {name: err / bn_worst for name, err in policy.items()}
    assert max(ratios.values()) <= 2.0, ratios
    # the measurement can tell: everything in bf16 (the code before the policy) misses the bound
    assert max(before.values()) / bn_worst > 2.0


def test_autocast_policy_compiles_fullgraph() -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = EIConv2d(3, 8, 3, padding=1)
    x = torch.rand(4, 3, 6, 6)
    eisnn.ei_init(layer, x)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(compiled(x), layer(x), rtol=1e-6, atol=1e-6)
    torch._dynamo.reset()
