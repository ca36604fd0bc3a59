"""E-I layers, the LIF and whole E-I networks compile with ``torch.compile(fullgraph=True)`` (no
graph breaks), computing what eager mode computes.

``aot_eager`` traces forward and backward through dynamo and AOT autograd (the custom operations
included, as single opaque nodes) without generating C++ code, which keeps the tests fast; a
graph break raises. One test runs inductor on a small network.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch._dynamo.backends.debugging import aot_eager

import eisnn
from eisnn.functional import cpu_kernels
from eisnn.models import create_model
from eisnn.models.registry import make_kind
from eisnn.models.vgg import VGG, parse_plan
from eisnn.nn import LIF, EIConv2d, EILinear

T, B = 2, 2
OPERATIONS = {"eisnn.ei_fused_forward.default", "eisnn.lif_forward.default"}
KERNELS = ("ei_forward", "ei_backward", "lif_forward", "lif_backward")


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


def _initialized(model: torch.nn.Module, size: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """``model`` after E-I Init on a random batch of ``size x size`` images, and another batch."""
    gen = torch.Generator().manual_seed(0)
    eisnn.ei_init(model, torch.rand(B, 3, size, size, generator=gen))
    return model, torch.rand(B, 3, size, size, generator=gen)


def _step(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Logits of ``model`` (a compiled one, or the eager original) and its parameters'
    gradients of a squared loss."""
    out = model(x)
    params = [p for p in model.parameters() if p.requires_grad]
    return out, list(torch.autograd.grad(out.square().sum(), params, allow_unused=True))


def _assert_same_step(got: tuple, want: tuple, rtol: float) -> None:
    torch.testing.assert_close(got[0], want[0], rtol=rtol, atol=1e-6)
    assert sum(g is not None for g in want[1]) > 0
    for g, w in zip(got[1], want[1]):
        assert (g is None) == (w is None)
        if w is not None:
            torch.testing.assert_close(g, w, rtol=rtol, atol=1e-6 * float(w.abs().max()) + 1e-12)


def _count_kernel_calls(monkeypatch) -> dict[str, int]:
    """Count the calls of the C kernels from here on."""
    calls = dict.fromkeys(KERNELS, 0)
    for name in KERNELS:
        kernel = getattr(cpu_kernels, name)

        def counted(*args, _kernel=kernel, _name=name):
            calls[_name] += 1
            return _kernel(*args)

        monkeypatch.setattr(cpu_kernels, name, counted)
    return calls


@pytest.mark.parametrize(
    "name, size, options",
    [("ei_vgg8", 32, {"width": 0.125}), ("ei_resnet18", 8, {"width": 1 / 16})],
)
def test_whole_ei_networks_compile_fullgraph_and_call_the_kernels(
    name: str, size: int, options: dict, monkeypatch
) -> None:
    """One graph holding the custom operations as nodes; forward and backward equal to eager;
    the C kernels (where they could be built) run inside the compiled graphs."""
    model, x = _initialized(create_model(name, 5, 3, T, image_size=size, **options), size)
    graphs: list[torch.fx.GraphModule] = []

    def recording(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    compiled = torch.compile(model, backend=recording, fullgraph=True)
    calls = _count_kernel_calls(monkeypatch)
    got = _step(compiled, x)
    assert len(graphs) == 1
    assert {str(node.target) for node in graphs[0].graph.nodes} >= OPERATIONS
    kernels_built = cpu_kernels.usable(torch.zeros(1))
    assert all((count > 0) == kernels_built for count in calls.values()), calls
    _assert_same_step(got, _step(model, x), rtol=1e-6)


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "c++")) is None, reason="inductor needs a C++ compiler"
)
def test_inductor_compiles_a_small_ei_vgg() -> None:
    """Inductor generates code around the custom operations: the step agrees with eager to
    float32 rounding (inductor reorders the other operations' arithmetic)."""
    vgg = VGG(parse_plan("8 P 16 P"), make_kind("ei", {}, T), 5, 3, T, image_size=8)
    model, x = _initialized(vgg, 8)
    _assert_same_step(_step(torch.compile(model, fullgraph=True), x), _step(model, x), rtol=1e-4)
