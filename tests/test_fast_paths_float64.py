"""The float32 fast paths (the fused nodes, with and without the C kernels: their tiers) against the
float64 eager reference, on inputs where float32 rounding cannot flip a spike.

Deep networks amplify a float32 rounding near the threshold into a flipped spike (which is why
the reference parity runs in float64); single layers and shallow stacks whose membranes stay at
least ``MARGIN`` away from the threshold must agree to float32 precision, spikes exactly.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eisnn import functional as EF
from eisnn.functional import cpu_kernels
from eisnn.nn import LIF, EIConv2d, EILinear

T, B = 2, 3
MARGIN = 1e-5  # smallest |H - V_th| of the float64 run; float32 errors of these currents are ~1e-7
TIERS = ["kernel", "fused"]


def _check_tier(tier: str) -> None:
    if tier == "kernel" and not cpu_kernels.usable(torch.zeros(1)):
        pytest.skip("no C compiler: the kernels cannot be built")


def _membranes(x: torch.Tensor, tau: float = 2.0, v_threshold: float = 1.0) -> torch.Tensor:
    """``H[t]`` of the LIF recurrence (SPEC section 5), written out independently."""
    v, history = torch.zeros_like(x[0]), []
    for x_t in x:
        h = v - v / tau + x_t
        history.append(h)
        v = h - v_threshold * (h >= v_threshold).to(h.dtype)
    return torch.stack(history)


class Stack(nn.Module):
    """E-I conv -> LIF -> E-I conv -> LIF -> E-I readout, recording each LIF's input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = EIConv2d(2, 12, 3, padding=1)
        self.conv2 = EIConv2d(12, 16, 3, stride=2, padding=1)
        self.readout = EILinear(16 * 3 * 3, 5, readout=True)
        self.lif = LIF()
        self.lif_inputs: list[torch.Tensor] = []

    def _spikes(self, currents: torch.Tensor) -> torch.Tensor:
        self.lif_inputs.append(currents.detach())
        return self.lif(currents.view(T, B, *currents.shape[1:])).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lif_inputs = []
        s = self._spikes(self.conv1(x))
        s = self._spikes(self.conv2(s))
        return self.readout(s.flatten(1)).view(T, B, -1).mean(0)


def _initialized_stack() -> tuple[Stack, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(T * B, 2, 6, 6, generator=gen, dtype=torch.float64)
    torch.manual_seed(3)
    model = Stack().double()
    with torch.no_grad():
        model.conv1.ei_init_from(x, gen)
        model.conv2.ei_init_from(model.lif(model.conv1(x).view(T, B, 12, 6, 6)).flatten(0, 1), gen)
        model.readout.ei_init_from(torch.rand(T * B, 144, generator=gen, dtype=torch.float64), gen)
        for layer in (model.conv1, model.conv2):
            layer.b_e.normal_(0.6, 0.3, generator=gen)  # a bias that makes both LIF layers fire
    return model, x


def _run(model: nn.Module, x: torch.Tensor, dtype: torch.dtype):
    """Logits, spikes per LIF, and every parameter gradient of a cross-entropy step."""
    model = model.to(dtype)
    x = x.detach().to(dtype).requires_grad_()
    logits = model(x)
    F.cross_entropy(logits, torch.arange(B) % 5).backward()
    grads = {n: p.grad.double() for n, p in model.named_parameters() if p.grad is not None}
    grads["input"] = x.grad.double()
    lif_inputs = [c.double() for c in model.lif_inputs]
    return logits.detach().double(), lif_inputs, grads


@pytest.mark.parametrize("tier", TIERS)
def test_shallow_stack_float32_matches_float64(tier: str) -> None:
    _check_tier(tier)
    model, x = _initialized_stack()
    with EF.use_tier("eager"):
        ref_logits, ref_inputs, ref_grads = _run(model, x, torch.float64)
    for currents in ref_inputs:  # the precondition: no membrane within MARGIN of the threshold
        h = _membranes(currents.view(T, B, *currents.shape[1:]))
        assert float((h - 1.0).abs().min()) > MARGIN
        assert 0.05 < float((h >= 1.0).double().mean()) < 0.95  # both layers really spike
    model.zero_grad()
    with EF.use_tier(tier):
        logits, inputs, grads = _run(model, x, torch.float32)
    for ours, ref in zip(inputs, ref_inputs):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
        spikes = _membranes(ours.view(T, B, *ours.shape[1:])) >= 1.0
        assert torch.equal(spikes, _membranes(ref.view(T, B, *ref.shape[1:])) >= 1.0)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
    assert set(grads) == set(ref_grads)
    largest = max(float(g.abs().max()) for g in ref_grads.values())
    for name, ref in ref_grads.items():
        scale = float(ref.abs().max())
        if scale < 1e-9 * largest:  # readout W_IE: zero in exact arithmetic, rounding noise here
            assert float(grads[name].abs().max()) < 1e-6 * largest, name
            continue
        torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("conv", [True, False])
@pytest.mark.parametrize("stabilization", ["adaptive", "epsilon"])
def test_single_layer_float32_matches_float64(tier, conv, stabilization) -> None:
    _check_tier(tier)
    gen = torch.Generator().manual_seed(5)
    shape = (8, 3, 7, 7) if conv else (8, 40)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    x[0] = 0  # a silent sample: div == 0 everywhere (adaptive: +inf, the output is b_E)
    torch.manual_seed(5)
    layer = (
        EIConv2d(3, 16, 3, padding=1, stabilization=stabilization)
        if conv
        else EILinear(40, 16, stabilization=stabilization)
    )
    layer = layer.double()
    layer.ei_init_from(x[1:], gen)
    with torch.no_grad():
        layer.b_e.normal_(0, 0.5, generator=gen)
    grad_out = torch.randn((8, 16, 7, 7) if conv else (8, 16), generator=gen, dtype=torch.float64)
    with EF.use_tier("eager"):
        xr = x.clone().requires_grad_()
        out_ref = layer(xr)
        out_ref.backward(grad_out)
    ref_grads = {"input": xr.grad, **{n: p.grad.clone() for n, p in layer.named_parameters()}}
    layer.zero_grad()
    layer = layer.float()
    x32 = x.float().requires_grad_()
    with EF.use_tier(tier):
        out = layer(x32)
        out.backward(grad_out.float())
    grads = {"input": x32.grad, **{n: p.grad for n, p in layer.named_parameters()}}
    finite = torch.isfinite(out_ref)
    assert torch.equal(torch.isfinite(out), finite)
    torch.testing.assert_close(out.double()[finite], out_ref[finite], rtol=1e-5, atol=1e-5)
    for name, ref in ref_grads.items():
        scale = float(ref.abs().max())
        torch.testing.assert_close(
            grads[name].double(), ref, rtol=1e-4, atol=1e-5 * scale, msg=name
        )
