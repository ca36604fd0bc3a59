"""Parity with the paper's reference implementation on its recorded VGG-8 (CIFAR-10)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn.compat import load_reference, to_reference
from eisnn.compat.reference import _key_map
from eisnn.init import ei_layers


def _ours_by_reference_name(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    params = dict(model.named_parameters())
    return {ref: params[ours] for ours, (ref, _) in _key_map(model, False).items()}


@pytest.fixture(scope="module")
def stepped(reference_vgg8):
    """The loaded model after forward, backward on X1 (before the step) and one SGD + Dale step."""
    fx = reference_vgg8
    model = load_reference(fx["state_dict"], fx["config"]).train()
    logits = model(fx["X1"])
    loss = F.cross_entropy(logits, fx["y1"])
    loss.backward()
    grads = {ref: p.grad.detach().clone() for ref, p in _ours_by_reference_name(model).items() if p.grad is not None}
    opt = torch.optim.SGD(model.parameters(), **fx["optimizer"])
    eisnn.dale.attach(opt, model)
    opt.step()
    return model, logits.detach(), loss.detach(), grads


def test_logits_match(reference_vgg8, stepped):
    _, logits, loss, _ = stepped
    torch.testing.assert_close(logits, reference_vgg8["logits"], rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, reference_vgg8["loss"], rtol=0, atol=1e-5)


def test_gradients_match(reference_vgg8, stepped):
    *_, grads = stepped
    recorded = reference_vgg8["grads"]
    assert set(grads) == set(recorded), "parameters with a gradient differ from the reference"
    assert not set(grads) & set(reference_vgg8["unused_params"])
    scale = max(float(r["abssum"]) for r in recorded.values())
    for name, rec in recorded.items():
        ours = grads[name].reshape(-1).double()
        abssum = float(rec["abssum"])
        if abssum < 1e-6 * scale:
            # The exact gradient is zero (readout W_IE: softmax gradients sum to zero over classes
            # and W_EI's rows are equal); both recordings are float rounding noise.
            assert float(ours.abs().sum()) < 1e-6 * scale, name
            continue
        # Sums relative to themselves, or to 1e-2 of the magnitude where they cancel to ~0.
        assert abs(float(ours.sum()) - float(rec["sum"])) <= 1e-4 * max(abs(float(rec["sum"])), 1e-2 * abssum), name
        assert abs(float(ours.abs().sum()) - abssum) <= 1e-4 * abssum, name
        cos = F.cosine_similarity(ours[rec["idx"]], rec["val"].double().reshape(-1), dim=0)
        assert cos >= 0.9999, f"{name}: cosine {float(cos):.6f}"


def test_step_and_dale_match(reference_vgg8, stepped):
    model, *_ = stepped
    ours = _ours_by_reference_name(model)
    for name, rec in reference_vgg8["after_step"].items():
        got = ours[name].detach().reshape(-1)[rec["idx"]]
        torch.testing.assert_close(got, rec["val"].reshape(-1).to(got.dtype), rtol=0, atol=1e-6, msg=name)
    with torch.no_grad():
        after = model(reference_vgg8["X1"])
    torch.testing.assert_close(after, reference_vgg8["logits_after_step"], rtol=0, atol=1e-4)


def test_ei_init_statistics(reference_vgg8):
    fx = reference_vgg8
    fresh = eisnn.models.create_model("ei_vgg8", 10, 3, fx["config"]["T"])
    eisnn.ei_init(fresh, fx["X0"])
    layers = [layer for _, layer in ei_layers(fresh)]
    conv_names = sorted({k.split(".exp_scale")[0] for k in fx["init_stats"] if k.endswith("exp_scale")}, key=lambda k: int(k.split(".")[1]))
    assert len(conv_names) == len(layers)
    # The first layer sees the same X0 as the reference, so its statistics must agree exactly.
    first = layers[0]
    prefix = int(conv_names[0].split(".")[1])
    assert float(first.init_scale) == pytest.approx(fx["init_stats"][f"layers.{prefix}.exp_scale"], rel=1e-5)
    assert float(first.init_gain) == pytest.approx(fx["init_stats"][f"layers.{prefix + 1}.gain_i_mean"], rel=1e-5)
    torch.testing.assert_close(first.g_i, torch.full_like(first.g_i, float(first.init_gain)))
    # Weights are exponential with the derived mean (up to sampling noise).
    assert float(first.w_ee.detach().mean()) == pytest.approx(float(first.init_scale), rel=0.15)


def test_round_trip_is_exact(reference_vgg8):
    model = load_reference(reference_vgg8["state_dict"], reference_vgg8["config"])
    back = to_reference(model)
    assert list(back) == [k for k in reference_vgg8["state_dict"]]
    for key, value in reference_vgg8["state_dict"].items():
        assert back[key].shape == value.shape and torch.equal(back[key], value), key
    again = load_reference(copy.deepcopy(dict(back)), reference_vgg8["config"])
    for (key, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=key)
