"""E-I Init: statistics, errors, and an init state that survives checkpoints."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn.init import ei_layers
from eisnn.models import create_model
from eisnn.nn import EIConv2d, EILinear, NotInitializedError


def test_uninitialized_model_refuses_to_run():
    model = create_model("ei_mlp", 3, 1, 2, image_size=4, hidden=(8,))
    for mode in (model.train, model.eval):
        mode()
        with pytest.raises(NotInitializedError, match="ei_init"):
            model(torch.rand(2, 1, 4, 4))


def test_statistics_on_bernoulli_spikes():
    """For Bernoulli(p) inputs, g_I = sqrt((2 - p) / (d p)) and scale from the SPEC formula."""
    p, d = 0.2, 400
    layer = EILinear(d, 64)
    x = (torch.rand(20000, d) < p).float()
    eisnn.ei_init(layer, x)
    assert float(layer.init_gain) == pytest.approx(math.sqrt((2 - p) / (d * p)), rel=0.02)
    var = p * (1 - p)
    assert float(layer.init_scale) == pytest.approx(math.sqrt(var / (d * (p + var))), rel=0.02)
    assert (
        torch.all(layer.w_ei == 1 / layer.n_inhibitory)
        and torch.all(layer.g_e == 1)
        and torch.all(layer.b_e == 0)
    )
    assert layer.w_ee.detach().mean() == pytest.approx(float(layer.init_scale), rel=0.05)
    # Exponential weights: standard deviation equals the mean.
    assert layer.w_ee.detach().std() == pytest.approx(float(layer.init_scale), rel=0.05)


def test_layers_are_initialized_on_real_activations_in_order():
    model = create_model("ei_vgg8", 4, 3, 2, width=0.125)
    seen = []
    for name, layer in ei_layers(model):
        layer.register_forward_hook(
            lambda m, a, out, name=name: seen.append((name, m._initialized))
        )
    eisnn.ei_init(model, torch.rand(4, 3, 32, 32))
    assert [n for n, _ in seen] == [n for n, _ in ei_layers(model)]
    assert all(flag for _, flag in seen)  # each layer was initialized just before it ran
    scales = [float(layer.init_scale) for _, layer in ei_layers(model)]
    assert len(set(scales)) == len(scales) and all(s > 0 for s in scales)


@pytest.mark.parametrize("bad,message", [(-0.1, "negative input"), (0.0, "all-zero")])
def test_bad_first_batch_names_the_layer(bad, message):
    model = create_model("ei_vgg8", 4, 3, 2, width=0.125)
    x = torch.rand(2, 3, 32, 32) if bad else torch.zeros(2, 3, 32, 32)
    if bad:
        x[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=f"stem.current.*{message}"):
        eisnn.ei_init(model, x)


def test_deep_silent_layer_is_reported():
    model = create_model("ei_mlp", 3, 1, 2, image_size=4, hidden=(8, 8), v_threshold=1e6)
    with pytest.raises(ValueError, match="body.0.current.*all-zero"):
        eisnn.ei_init(model, torch.rand(4, 1, 4, 4))


def test_checkpoint_round_trip_does_not_reinitialize():
    model = create_model("ei_vgg8", 4, 3, 2, width=0.125)
    x = torch.rand(4, 3, 32, 32)
    eisnn.ei_init(model, x)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    eisnn.dale.attach(opt, model)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
        opt.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = create_model("ei_vgg8", 4, 3, 2, width=0.125)
    fresh.load_state_dict(torch.load(buffer))
    assert eisnn.is_initialized(fresh)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    eisnn.ei_init(fresh, torch.rand(4, 3, 32, 32))  # a no-op on an initialized model
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, equal_nan=True)


def test_standard_init_needs_no_data():
    layer = EIConv2d(3, 8, 3, init="standard")
    assert layer._initialized and bool(layer.initialized)
    assert all(bool((getattr(layer, n) >= 0).all()) for n in ("w_ee", "w_ie", "w_ei", "g_i", "g_e"))
    assert layer(torch.rand(2, 3, 5, 5)).shape == (2, 8, 3, 3)


def _init_warnings(**options) -> list[str]:
    model = create_model("ei_resnet18", 10, 1, 2, image_size=8, **options)
    with pytest.warns() as caught:
        eisnn.ei_init(model, torch.rand(4, 1, 8, 8))
    return [str(w.message) for w in caught if w.category is eisnn.init.NarrowInhibitionWarning]


def test_a_network_in_the_failing_region_gets_one_warning_line():
    # ResNet-18 at width 1/8: 8 channels in the stem and the first stage -> 2 I units each; in
    # docs/edge.md these networks collapsed on most seeds
    (message,) = _init_warnings(width=0.125)
    assert "\n" not in message
    assert "fewer than 4 inhibitory units (fewest 2, first 'stem" in message
    assert "5 E-I layer(s)" in message  # the stem and the four convolutions of the first stage


@pytest.mark.parametrize(
    "name, options, narrow_layers",
    [
        ("ei_resnet18", {"width": 0.25}, 0),
        ("ei_resnet18", {"width": 0.125, "ei_ratio": 2.0}, 0),
        ("ei_vgg8", {"width": 0.125, "image_size": 32}, 1),  # trained on every seed in edge.md
    ],
)
def test_networks_outside_the_failing_region_get_no_warning(name, options, narrow_layers):
    model = create_model(name, 10, 1, 2, **{"image_size": 8, **options})
    assert eisnn.init.narrow_inhibition(model) is None
    hidden = [layer for _, layer in ei_layers(model) if not layer.readout]
    assert sum(layer.n_inhibitory < 4 for layer in hidden) == narrow_layers
