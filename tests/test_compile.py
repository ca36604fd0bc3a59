"""E-I layers and the LIF compile with ``torch.compile(fullgraph=True)`` (no graph breaks).

``aot_eager`` traces forward and backward through dynamo and AOT autograd (the custom autograd
nodes included) without generating C++ code, which keeps the test fast; a graph break raises.
"""

from __future__ import annotations

import pytest
import torch

from eisnn.nn import LIF, EIConv2d, EILinear


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _check(module: torch.nn.Module, x: torch.Tensor) -> None:
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    ref, out = module(xs[0]), compiled(xs[1])
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [xs[0], *module.parameters()], g, allow_unused=True)
    out_grads = torch.autograd.grad(out, [xs[1], *module.parameters()], g, allow_unused=True)
    assert ref_grads[0] is not None
    for got, want in zip(out_grads, ref_grads):
        if want is None:  # parameters a readout does not use
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stabilization", ["adaptive", "epsilon"])
def test_ei_conv_compiles_fullgraph(stabilization: str) -> None:
    _check(
        EIConv2d(3, 8, 3, padding=1, stabilization=stabilization, init="standard"),
        torch.rand(4, 3, 6, 6),
    )


def test_ei_linear_and_readout_compile_fullgraph() -> None:
    _check(EILinear(10, 8, init="standard"), torch.rand(4, 10))
    _check(EILinear(10, 8, readout=True, init="standard"), torch.rand(4, 10))


@pytest.mark.parametrize("tau", [2.0, 3.0])
def test_lif_compiles_fullgraph(tau: float) -> None:
    _check(LIF(tau=tau), torch.rand(4, 3, 5) * 1.6)
