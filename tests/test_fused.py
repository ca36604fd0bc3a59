"""The fused LIF and E-I integration agree with the eager reference, forward and backward."""

from __future__ import annotations

import pytest
import torch

from eisnn import functional as EF
from eisnn.nn import EIConv2d, EILinear


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int = 1) -> list[torch.Tensor]:
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return list(torch.autograd.grad(out, inputs, g, allow_unused=False))


def test_default_tier_is_the_fused_node_and_eager_can_be_forced() -> None:
    currents, w_ei, g_i, g_e, b_e = _ei_inputs((2, 2), torch.float64)
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    ei_op, lif_op = "eisnn_ei_fused_forward", "eisnn_lif_forward"  # the custom operations
    assert ei_op in EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e).grad_fn.name()
    assert lif_op in EF.lif_multistep(x).grad_fn.name()
    with EF.use_tier("eager"):
        assert ei_op not in EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e).grad_fn.name()
        assert lif_op not in EF.lif_multistep(x).grad_fn.name()
    with pytest.raises(ValueError, match="tier"), EF.use_tier("fastest"):
        pass


@pytest.mark.parametrize("tau", [2.0, 3.0])
@pytest.mark.parametrize("surrogate", ["sigmoid", "arctan"])
@pytest.mark.parametrize("shape", [(5, 3, 7), (4, 2, 3, 5, 5)])
def test_lif_fused_matches_eager(tau: float, surrogate: str, shape: tuple[int, ...]) -> None:
    x = (torch.rand(shape) * 1.6).requires_grad_()
    with torch.no_grad():
        x[1].view(-1)[:3] = 1.0  # membrane exactly at threshold at t=1 (spike: H == V_th)
    ref = EF.lif_multistep_eager(x, tau, 1.0, surrogate, 4.0)
    out = EF.lif_multistep_fused(x, tau, 1.0, surrogate, 4.0)
    assert torch.equal(out, ref), "fused spikes differ from the eager loop"
    assert 0 < float(ref.detach().mean()) < 1
    (g_ref,), (g_out,) = _grads(ref, [x]), _grads(out, [x])
    torch.testing.assert_close(g_out, g_ref, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        assert torch.equal(EF.lif_multistep_fused(x, tau, 1.0, surrogate, 4.0), ref)


def test_lif_fused_rejects_unknown_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        EF.lif_multistep_fused(torch.rand(2, 3), surrogate="nope")


N_E, N_I = 8, 3  # excitatory and inhibitory channels of the test inputs


def _ei_inputs(spatial: tuple[int, ...], dtype: torch.dtype) -> list[torch.Tensor]:
    n, e, i = 6, N_E, N_I
    currents = torch.rand(n, e + i, *spatial, dtype=dtype)
    if spatial:
        currents[0, e:, :2] = 0  # silent positions: div == 0, replaced by the row minimum
    else:
        currents[0, e:] = 0
    currents[1, e:] = 0  # a silent row: div == 0 everywhere, row minimum +inf
    params = [
        torch.rand(e, i, dtype=dtype),
        torch.rand(i, dtype=dtype) + 0.1,
        torch.rand(e, dtype=dtype) + 0.5,
        torch.randn(e, dtype=dtype),
    ]
    return [currents.requires_grad_(), *(p.requires_grad_() for p in params)]


@pytest.mark.parametrize("stabilization", ["adaptive", "epsilon", "none"])
@pytest.mark.parametrize(
    "spatial", [(4, 5), (1, 2), ()]
)  # many positions, fewer positions than I units, linear
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("balanced", [False, True])
def test_ei_fused_matches_eager(
    stabilization: str, spatial: tuple[int, ...], dtype: torch.dtype, balanced: bool
) -> None:
    """``balanced``: the currents are ``[a; I_I]`` of the folded weight, and the reference is its
    eager tier (``ei_integrate_balanced``): gradients of ``a``, ``I_I`` and ``W_EI`` through the
    divisive path only."""
    currents, w_ei, g_i, g_e, b_e = inputs = _ei_inputs(spatial, dtype)
    if stabilization == "none":
        with torch.no_grad():
            currents[:, N_E:] += 0.01  # no zero denominators without stabilization
    n_e = w_ei.shape[0]
    opts = {"stabilization": stabilization, "epsilon": 1e-3}
    if balanced:
        ref = EF.ei_integrate_balanced(currents, n_e, w_ei, g_i, g_e, b_e, **opts)
    else:
        ref = EF.ei_integrate_eager(
            currents[:, :n_e], currents[:, n_e:], w_ei, g_i, g_e, b_e, **opts
        )
    out = EF.ei_integrate_fused(currents, n_e, w_ei, g_i, g_e, b_e, **opts, balanced=balanced)
    split = EF.ei_integrate(currents, n_e, w_ei, g_i, g_e, b_e, **opts, balanced=balanced)
    assert "eisnn_ei_fused_forward" in split.grad_fn.name()
    # float32: values and sums of products differ in rounding only (relative to the largest
    # magnitude).
    rtol = 1e-12 if dtype == torch.float64 else 1e-4

    def close(got: torch.Tensor, want: torch.Tensor, msg: str) -> None:
        got, want = got.detach(), want.detach()
        torch.testing.assert_close(
            got, want, rtol=rtol, atol=rtol * 1e-2 * float(want.abs().max()), msg=msg
        )

    close(out, ref, "output")
    close(split, ref, "output of ei_integrate")
    if stabilization == "adaptive":
        assert torch.equal(out[1], b_e.detach().view(-1, *[1] * len(spatial)).expand_as(out[1]))
    for name, got, want in zip(
        ["currents", "w_ei", "g_i", "g_e", "b_e"], _grads(out, inputs), _grads(ref, inputs)
    ):
        close(got, want, name)


@pytest.mark.parametrize("options", [{"readout": True}, {"ste": False}])
def test_ei_unfused_configurations_use_the_reference(options: dict) -> None:
    currents, w_ei, g_i, g_e, b_e = _ei_inputs((3, 3), torch.float64)
    assert not EF.fused_supported(
        options.get("readout", False), "adaptive", options.get("ste", True)
    )
    ref = EF.ei_integrate_eager(
        currents[:, :N_E], currents[:, N_E:], w_ei, g_i, g_e, b_e, **options
    )
    out = EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e, **options)
    assert torch.equal(out, ref)


def test_ei_fused_rejects_unknown_stabilization() -> None:
    currents, w_ei, g_i, g_e, b_e = _ei_inputs((2, 2), torch.float32)
    with pytest.raises(ValueError, match="stabilization"):
        EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e, stabilization="clip")


LAYER_OPTIONS = [
    {},
    {"readout": True},
    {"ste": False},
    {"stabilization": "epsilon", "epsilon": 1e-3},
    {"scale_w_ei_grad": False},
]


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("conv", [True, False], ids=["conv", "linear"])
def test_layer_matches_eager_composition(conv: bool, options: dict) -> None:
    """A whole layer (stacked input map, fused integration, 1/d scaling of W_EI's gradient)
    against the eager composition of its currents, forward and every parameter gradient."""
    layer = (
        EIConv2d(3, 8, 3, padding=1, init="standard", **options)
        if conv
        else EILinear(12, 8, init="standard", **options)
    ).double()
    x = (
        torch.rand(5, 3, 6, 6, dtype=torch.float64)
        if conv
        else torch.rand(5, 12, dtype=torch.float64)
    )
    with torch.no_grad():
        if conv:
            x[0, :, :3] = 0  # silent positions: zero denominators replaced by the row minimum
        else:
            x[1] = 0  # a silent sample: its row minimum is +inf
        layer.w_ee.mul_(
            torch.rand_like(layer.w_ee) * 2
        )  # E drive above or below I drive: currents of both signs
    names = ["w_ee", "w_ie", "w_ei"] + (
        [] if options.get("readout") else ["g_i", "g_e", "b_e"]
    )  # a readout uses no gains
    params = [getattr(layer, name) for name in names]
    out = layer(x)
    i_ee, i_i = layer.currents(x)
    w_ei = EF.divide_grad(layer.w_ei, float(layer.fan_in)) if layer.scale_w_ei_grad else layer.w_ei
    ref = EF.ei_integrate_eager(
        i_ee,
        i_i,
        w_ei,
        layer.g_i,
        layer.g_e,
        layer.b_e,
        **{k: v for k, v in options.items() if k != "scale_w_ei_grad"},
    )
    assert (
        float((out - layer.b_e.view(1, -1, *[1] * (out.dim() - 2))).detach().min())
        < 0
        < float(out.detach().max())
    )
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(names, _grads(out, params), _grads(ref, params)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=name)


def test_bf16_autocast_trains() -> None:
    """Under CPU autocast the fused paths run in bfloat16 and return gradients in the parameters'
    dtype."""
    layer = EIConv2d(3, 8, 3, padding=1, init="standard")
    x = torch.rand(2, 4, 3, 6, 6).flatten(0, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        current = layer(x)
        spikes = EF.lif_multistep(current.view(2, 4, *current.shape[1:]))
    spikes.float().sum().backward()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("batch", [1, 4])
def test_fused_node_does_not_keep_the_stacked_currents(batch: int) -> None:
    """The node saves ``I_EE - sub`` and a copy of ``I_I``, so the convolution's output can be
    freed: no saved tensor shares its storage (also with one sample, where ``I_I`` is
    contiguous)."""
    currents, w_ei, g_i, g_e, b_e = _ei_inputs((3, 4), torch.float32)
    currents = currents[:batch].detach().clone().requires_grad_()
    out = EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e)
    saved = [t.untyped_storage().data_ptr() for t in out.grad_fn.saved_tensors]
    assert len(saved) == 6 and currents.untyped_storage().data_ptr() not in saved


def _lif_node(dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = (torch.rand(4, 3, 5, dtype=dtype) * 1.6).requires_grad_()
    return EF.lif_multistep(x), [x]


def _ei_node(dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    currents, w_ei, g_i, g_e, b_e = inputs = _ei_inputs((2, 3), dtype)
    return EF.ei_integrate(currents, N_E, w_ei, g_i, g_e, b_e), inputs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])  # C kernels (if built), torch ops
@pytest.mark.parametrize("node", [_lif_node, _ei_node], ids=["lif", "ei"])
def test_fused_nodes_refuse_a_second_derivative_in_words(node, dtype: torch.dtype) -> None:
    out, inputs = node(dtype)
    weights = torch.rand(out.shape, dtype=dtype).requires_grad_()
    twice = r"cannot be differentiated twice \(create_graph=True\)"
    for loss in (out.sum(), (out * weights).sum()):  # the incoming gradient without, with a graph
        with pytest.raises(RuntimeError, match=twice):
            torch.autograd.grad(loss, inputs, create_graph=True)
    first = torch.autograd.grad(out.sum(), inputs)  # first order as before
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in first)
    with EF.use_tier("eager"):  # what the message recommends: the eager tier differentiates twice
        out, inputs = node(dtype)
        (grad, *_) = torch.autograd.grad((out * out).sum(), inputs, create_graph=True)
        assert grad.requires_grad


def test_the_eager_references_and_the_other_nodes_are_twice_differentiable() -> None:
    from eisnn.baselines.backei import rect_sign, rect_spike

    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, dtype=torch.float64, generator=gen).requires_grad_()

    u = (torch.randn(6, dtype=torch.float64, generator=gen)).requires_grad_()
    for node in (
        lambda u: EF.spike(u, "sigmoid", 4.0),
        lambda u: EF.spike(u, "arctan", 2.0),
        lambda u: EF.divide_grad(u, 3.0),
        rect_spike,
        rect_sign,
    ):
        assert torch.autograd.gradgradcheck(node, (u,))
    x = (1.6 * rand(3, 2, 2)).detach().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x: EF.lif_multistep_eager(x, 3.0), (x,))
    e = 3  # excitatory channels of 3 + 2; currents > 0: away from the kinks of the stabilization
    currents, w_ei, g_i, g_e, b_e = rand(2, e + 2, 2), rand(e, 2), rand(2), rand(e), rand(e)

    def ei(c, w, gi, ge, be):
        return EF.ei_integrate_eager(c[:, :e], c[:, e:], w, gi, ge, be)

    assert torch.autograd.gradgradcheck(ei, (currents, w_ei, g_i, g_e, b_e))
