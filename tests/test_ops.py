"""The fused E-I integration and LIF as custom operations (``eisnn::...``): PyTorch's operator
checks, ``torch.export``, what they save, and the device dispatch (C kernels, Triton, PyTorch ops).
"""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import eisnn
from eisnn import functional as EF
from eisnn.functional import cpu_kernels, devices
from eisnn.models import create_model

OPS = torch.ops.eisnn
N_E = 5


def _ei_args(dtype: torch.dtype, mode: str, kernel: bool) -> list:
    """Arguments of ``eisnn::ei_fused_forward``: stacked currents ``[3, 5 + 2, 2, 3]`` with a
    silent position (a zero denominator), weights, gains and biases that require gradients."""
    gen = torch.Generator().manual_seed(0)
    currents = torch.rand(3, N_E + 2, 2, 3, dtype=dtype, generator=gen)
    currents[0, N_E:, 0] = 0
    w_ei, g_i = torch.rand(N_E, 2, dtype=dtype, generator=gen), torch.rand(2, dtype=dtype) + 0.1
    g_e, b_e = torch.rand(N_E, dtype=dtype, generator=gen) + 0.5, torch.randn(N_E, dtype=dtype)
    tensors = [currents, w_ei, w_ei * g_i, g_e, b_e]
    return [t.requires_grad_() for t in tensors] + [N_E, mode, 1e-3, kernel, False]


def _lif_input(dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(4, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 1.6


def _assert_opcheck(op, args: list) -> None:
    results = torch.library.opcheck(op, args)
    assert set(results.values()) == {"SUCCESS"}, results


@pytest.mark.parametrize("kernel", [True, False])  # float32 with True: the C kernels (if built)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_operations_pass_the_operator_checks(dtype: torch.dtype, kernel: bool) -> None:
    """Schema, autograd registration, fake implementations (also with dynamic shapes under AOT
    autograd) of the four operations."""
    for mode in ("adaptive", "epsilon"):
        _assert_opcheck(OPS.ei_fused_forward.default, _ei_args(dtype, mode, kernel))
    with torch.no_grad():
        out, *state = OPS.ei_fused_forward(*_ei_args(dtype, "adaptive", kernel))
    weights = [w.detach() for w in _ei_args(dtype, "adaptive", kernel)[1:4]]  # first order only
    backward_args = [torch.randn_like(out), *state[:2], *weights, state[2], "adaptive", 1e-3]
    _assert_opcheck(OPS.ei_fused_backward.default, [*backward_args, kernel, False])
    x = _lif_input(dtype)
    for save_state in (True, False):
        lif_args = [x.clone().requires_grad_(save_state), 2.0, 1.0, "sigmoid", 4.0, kernel]
        _assert_opcheck(OPS.lif_forward.default, [*lif_args, save_state])
    _, h = OPS.lif_forward(x, 3.0, 1.0, "arctan", 2.0, kernel, True)
    for saved, saved_input in ((x, True), (h, False)) if h.numel() else ((x, True),):
        lif_args = [torch.randn_like(x), saved, 3.0, 1.0, "arctan", 2.0, saved_input]
        _assert_opcheck(OPS.lif_backward.default, lif_args)


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_balanced_mode_passes_the_operator_checks(dtype: torch.dtype, kernel: bool) -> None:
    """The balanced mode (``[a; I_I]`` of the folded weight, in ``dtype``; float32 parameters,
    float64 with float64 currents): both operations pass the checks, the backward taking the
    currents' channel slices as its ``a`` and ``I_I``."""
    args = _ei_args(torch.float64 if dtype == torch.float64 else torch.float32, "adaptive", kernel)
    args[0] = args[0].detach().to(dtype).requires_grad_()
    args[-1] = True
    for mode in ("adaptive", "epsilon"):
        _assert_opcheck(OPS.ei_fused_forward.default, [*args[:6], mode, *args[7:]])
    with torch.no_grad():
        out, *_, row_min = OPS.ei_fused_forward(*args)
    assert out.dtype == torch.promote_types(dtype, torch.float32)
    c3 = args[0].detach().flatten(2)
    weights = [w.detach() for w in args[1:4]]
    backward_args = [torch.randn_like(out), c3[:, :N_E], c3[:, N_E:], *weights, row_min]
    _assert_opcheck(OPS.ei_fused_backward.default, [*backward_args, "adaptive", 1e-3, kernel, True])


def test_balanced_mode_saves_only_the_currents_in_their_own_dtype() -> None:
    """Under autocast the node's state is the bf16 currents themselves (no float32 copies of
    ``a`` or ``I_I``); it returns float32."""
    currents, w_ei, w_gi, g_e, b_e = _ei_args(torch.float32, "adaptive", True)[:5]
    currents = currents.detach().bfloat16().requires_grad_()
    g_i = (w_gi / w_ei).detach()[0]
    out = EF.ei_integrate_fused(currents, N_E, w_ei, g_i, g_e, b_e, balanced=True)
    assert out.dtype == torch.float32
    per_position = [t for t in out.grad_fn.saved_tensors if t.dim() > 2 and t.shape[1] > 1]
    assert [t.dtype for t in per_position] == [torch.bfloat16]
    assert per_position[0].data_ptr() == currents.data_ptr()


@pytest.mark.parametrize("kernels", ["1", "0"])  # EISNN_CPU_KERNELS: the C kernels, or none
def test_lif_backward_from_the_input_equals_the_backward_from_the_membranes(
    kernels: str, monkeypatch
) -> None:
    """Saved ``X`` (the membranes recomputed, by the C kernels or else the PyTorch loop) or saved
    ``H``: the same gradient."""
    monkeypatch.setenv("EISNN_CPU_KERNELS", kernels)
    x = _lif_input(torch.float32)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    _, h = OPS.lif_forward(x, 2.0, 1.0, "sigmoid", 4.0, False, True)
    from_h = OPS.lif_backward(grad, h, 2.0, 1.0, "sigmoid", 4.0, False)
    from_x = OPS.lif_backward(grad, x, 2.0, 1.0, "sigmoid", 4.0, True)
    torch.testing.assert_close(from_x, from_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_operation_saves_the_input_for_the_kernels_else_the_membranes(
    dtype: torch.dtype,
) -> None:
    """One saved tensor: ``X`` itself where the C kernels compute (float32), else ``H``."""
    x = _lif_input(dtype).requires_grad_()
    (saved,) = EF.lif_multistep(x).grad_fn.saved_tensors
    same_storage = saved.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    if devices.device_kernels(x, kernel=True) is cpu_kernels:
        assert same_storage
    else:
        assert not same_storage and saved.shape == x.shape
        assert torch.equal(saved[0], x[0].detach())  # H[0] = X[0]: the membrane starts at 0
    with torch.no_grad():
        assert EF.lif_multistep(x).grad_fn is None


def test_lif_operation_without_saved_state_refuses_a_gradient_in_words() -> None:
    x = _lif_input(torch.float64).requires_grad_()
    with pytest.raises(RuntimeError, match="save_state=False cannot be differentiated"):
        OPS.lif_forward(x, 2.0, 1.0, "sigmoid", 4.0, False, False)


def test_export_of_an_ei_network_in_eval_mode() -> None:
    """``torch.export`` traces an initialized E-I VGG with the operations as single nodes; the
    exported program computes the eager logits on another input."""
    model = create_model("ei_vgg8", 5, 3, 2, image_size=32, width=0.125)
    gen = torch.Generator().manual_seed(0)
    eisnn.ei_init(model, torch.rand(2, 3, 32, 32, generator=gen))
    model.eval()
    program = torch.export.export(model, (torch.rand(2, 3, 32, 32, generator=gen),))
    targets = {str(node.target) for node in program.graph.nodes}
    assert {"eisnn.ei_fused_forward.default", "eisnn.lif_forward.default"} <= targets
    x = torch.rand(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.fixture
def fresh_triton(monkeypatch):
    """``devices`` as before its first CUDA call (no Triton module looked up yet)."""
    monkeypatch.setattr(devices, "_triton", None)
    monkeypatch.setattr(devices, "_triton_failed", False)
    return monkeypatch


def _cuda_tensor(mode: FakeTensorMode) -> torch.Tensor:
    """A float32 tensor on a CUDA device (a fake one: no GPU is needed)."""
    with mode:
        return torch.empty(4, 3, device="cuda")


def test_cuda_tensors_use_the_triton_kernels(fresh_triton) -> None:
    triton_kernels = types.ModuleType("eisnn.functional.triton_kernels")
    triton_kernels.available = lambda: True
    fresh_triton.setitem(sys.modules, "eisnn.functional.triton_kernels", triton_kernels)
    mode = FakeTensorMode()
    x = _cuda_tensor(mode)
    assert devices.device_kernels(x, kernel=True) is triton_kernels
    assert devices.device_kernels(x, kernel=False) is None
    with mode:
        assert devices.device_kernels(x.double(), kernel=True) is None
    assert devices.device_kernels(torch.zeros(3), kernel=True) in (cpu_kernels, None)


@pytest.mark.parametrize("missing", ["module", "unavailable"])
def test_cuda_without_triton_falls_back_to_torch_ops_with_one_warning(
    missing: str, fresh_triton
) -> None:
    """Without the Triton module (or with Triton unable to run) the CUDA path is the PyTorch-op
    path; one warning says so, however many calls follow (the fake implementation asks too)."""
    module = None  # an import of a None entry of sys.modules raises ImportError
    if missing == "unavailable":
        module = types.ModuleType("eisnn.functional.triton_kernels")
        module.available = lambda: False
    fresh_triton.setitem(sys.modules, "eisnn.functional.triton_kernels", module)
    mode = FakeTensorMode()
    x = _cuda_tensor(mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert devices.device_kernels(x, kernel=True) is None
        with mode:
            spikes, h = OPS.lif_forward(x, 2.0, 1.0, "sigmoid", 4.0, True, True)
        assert devices.device_kernels(x, kernel=True) is None
    assert h.shape == x.shape  # the PyTorch loop saves the membranes
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "Triton kernels unavailable" in messages[0], messages
    assert "PyTorch operations on CUDA" in messages[0]
