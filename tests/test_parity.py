"""Parity with the paper's reference implementation on its recorded VGG-8 (CIFAR-10), in float64.

The recording is float64 (see its README): in float32 the convolutions round differently on
different CPUs, a membrane near threshold flips a spike and the logits move by about 1e-2, so
only a float64 comparison is portable. The whole check runs in float64, once through the eager
reference functions and once through the fused autograd nodes (their PyTorch-op tier: the C
kernels are float32 only and are checked against float64 in ``test_fast_paths_float64.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn import functional as EF
from eisnn.compat import load_reference, to_reference
from eisnn.compat.reference import _key_map
from eisnn.init import ei_layers

LOGITS_ATOL = 1e-10
GRAD_COSINE = 1 - 1e-9
GRAD_SUM_RTOL = 1e-7
STEP_ATOL = 1e-12


def _ours_by_reference_name(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    params = dict(model.named_parameters())
    return {ref: params[ours] for ours, (ref, _) in _key_map(model).items()}


@pytest.fixture(scope="module", params=["eager", "fused"])
def stepped(request, reference_vgg8) -> Iterator[tuple]:
    """The float64 model after forward and backward on X1, and one SGD + Dale step."""
    fx = reference_vgg8
    with EF.use_tier(request.param):
        model = load_reference(fx["state_dict"], fx["config"], dtype=torch.float64).train()
        assert all(p.dtype == torch.float64 for p in model.parameters())
        logits = model(fx["X1"])
        loss = F.cross_entropy(logits, fx["y1"])
        loss.backward()
        ours = _ours_by_reference_name(model).items()
        grads = {ref: p.grad.detach().clone() for ref, p in ours if p.grad is not None}
        opt = torch.optim.SGD(model.parameters(), **fx["optimizer"])
        eisnn.dale.attach(opt, model)
        opt.step()
        with torch.no_grad():
            after = model(fx["X1"])
        yield model, logits.detach(), loss.detach(), grads, after


def test_logits_match(reference_vgg8, stepped):
    _, logits, loss, _, _ = stepped
    assert logits.dtype == torch.float64
    torch.testing.assert_close(logits, reference_vgg8["logits"], rtol=0, atol=LOGITS_ATOL)
    torch.testing.assert_close(loss, reference_vgg8["loss"], rtol=0, atol=LOGITS_ATOL)


def test_gradients_match(reference_vgg8, stepped):
    *_, grads, _ = stepped
    recorded = reference_vgg8["grads"]
    assert set(grads) == set(recorded), "parameters with a gradient differ from the reference"
    assert not set(grads) & set(reference_vgg8["unused_params"])
    scale = max(float(r["abssum"]) for r in recorded.values())
    for name, rec in recorded.items():
        ours = grads[name].reshape(-1)
        abssum = float(rec["abssum"])
        if abssum < 1e-9 * scale:
            # The exact gradient is zero (readout W_IE: softmax gradients sum to zero over the
            # classes and W_EI's rows are equal); both recordings are float64 rounding noise.
            assert float(ours.abs().sum()) < 1e-9 * scale, name
            continue
        # Relative to the sum itself, or to 1e-6 of the magnitude where the sum cancels to ~0
        # (the readout's W_EE and W_EI: softmax gradients sum to zero over the classes).
        total = float(rec["sum"])
        floor = max(abs(total), 1e-6 * abssum)
        assert abs(float(ours.sum()) - total) <= GRAD_SUM_RTOL * floor, name
        assert abs(float(ours.abs().sum()) - abssum) <= GRAD_SUM_RTOL * abssum, name
        cos = F.cosine_similarity(ours[rec["idx"]], rec["val"].reshape(-1), dim=0)
        assert cos >= GRAD_COSINE, f"{name}: cosine 1 - {1 - float(cos):.2e}"


def test_step_and_dale_match(reference_vgg8, stepped):
    model, *_, after = stepped
    ours = _ours_by_reference_name(model)
    for name, rec in reference_vgg8["after_step"].items():
        got = ours[name].detach().reshape(-1)[rec["idx"]]
        expected = rec["val"].reshape(-1)
        torch.testing.assert_close(got, expected, rtol=0, atol=STEP_ATOL, msg=name)
    expected_after = reference_vgg8["logits_after_step"]
    torch.testing.assert_close(after, expected_after, rtol=0, atol=LOGITS_ATOL)


def test_ei_init_statistics(reference_vgg8):
    fx = reference_vgg8
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fresh = eisnn.models.create_model("ei_vgg8", 10, 3, fx["config"]["T"])
    finally:
        torch.set_default_dtype(previous)
    eisnn.ei_init(fresh, fx["X0"])
    layers = [layer for _, layer in ei_layers(fresh)]
    stats = fx["init_stats"]
    conv_names = sorted(
        {k.split(".exp_scale")[0] for k in stats if k.endswith("exp_scale")},
        key=lambda k: int(k.split(".")[1]),
    )
    assert len(conv_names) == len(layers)
    # The first layer sees the same X0 as the reference, so its statistics must agree exactly.
    first = layers[0]
    prefix = int(conv_names[0].split(".")[1])
    scale, gain = stats[f"layers.{prefix}.exp_scale"], stats[f"layers.{prefix + 1}.gain_i_mean"]
    assert float(first.init_scale) == pytest.approx(float(scale), rel=1e-12)
    assert float(first.init_gain) == pytest.approx(float(gain), rel=1e-12)
    torch.testing.assert_close(first.g_i, torch.full_like(first.g_i, float(first.init_gain)))
    # Weights are exponential with the derived mean (up to sampling noise).
    assert float(first.w_ee.detach().mean()) == pytest.approx(float(first.init_scale), rel=0.15)


def test_round_trip_is_exact(reference_vgg8):
    state, config = reference_vgg8["state_dict"], reference_vgg8["config"]
    model = load_reference(state, config, dtype=torch.float64)
    back = to_reference(model)
    assert list(back) == list(state)
    for key, value in state.items():
        assert back[key].shape == value.shape and torch.equal(back[key], value), key
    again = load_reference(copy.deepcopy(dict(back)), config, dtype=torch.float64)
    for (key, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=key)


def test_default_dtype_builds_float32(reference_vgg8):
    model = load_reference(reference_vgg8["state_dict"], reference_vgg8["config"])
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    first = to_reference(model)["layers.2.conv_ee.weight"]
    assert torch.equal(first, reference_vgg8["state_dict"]["layers.2.conv_ee.weight"].float())
