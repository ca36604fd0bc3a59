"""The C kernels (built on first use) of the LIF and the E-I integration against the PyTorch ops
and the references."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from eisnn import functional as EF
from eisnn.functional import cpu_kernels
from eisnn.functional.devices import device_kernels
from eisnn.functional.tiers import select_tier

pytestmark = pytest.mark.skipif(
    not cpu_kernels.usable(torch.zeros(1)), reason="no C compiler: the kernels cannot be built"
)


def _run_both(x: torch.Tensor, grad: torch.Tensor, **options):
    """Spikes and input gradient of the fused node with the kernels, then with the PyTorch loop."""
    results = []
    for kernel in (True, False):
        xi = x.clone().requires_grad_()
        spikes = EF.lif_multistep_fused(xi, **options, kernel=kernel)
        spikes.backward(grad)
        results.append((spikes.detach(), xi.grad))
    return results


@pytest.mark.parametrize("tau", [2.0, 3.0, 2.2])
@pytest.mark.parametrize("surrogate", ["sigmoid", "arctan"])
@pytest.mark.parametrize(
    "shape", [(4, 3, 1000), (70, 2, 33), (2, 9000)]
)  # odd sizes; T > 64 (small blocks); 2 threads
def test_kernels_match_the_pytorch_loop(
    tau: float, surrogate: str, shape: tuple[int, ...], monkeypatch
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen) * 1.6
    x.view(-1)[:50] = 1.0  # H == V_th at t = 0: a spike
    grad = torch.randn(shape, generator=gen)
    (s_kernel, g_kernel), (s_loop, g_loop) = _run_both(
        x, grad, tau=tau, surrogate=surrogate, alpha=4.0
    )
    assert torch.equal(s_kernel, s_loop), "spikes differ"
    assert 0.02 < float(s_kernel.mean()) < 0.98
    with torch.no_grad():
        assert torch.equal(EF.lif_multistep_fused(x, tau=tau, surrogate=surrogate), s_kernel)
    # The surrogate's 1 - sig(a u) rounds to within one float32 ulp of 1: an absolute error of
    # about a * 2^-24 * |dL/dS| per step in either implementation.
    torch.testing.assert_close(
        g_kernel, g_loop, rtol=1e-5, atol=4.0 * 2.0**-23 * float(grad.abs().max())
    )


def test_very_long_sequences_keep_their_history_on_the_heap(monkeypatch) -> None:
    """T > 16384: one element per block, its whole H history in a heap buffer."""
    x = torch.rand(17000, 2, generator=torch.Generator().manual_seed(2)) * 1.6
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    (s_kernel, g_kernel), (s_loop, g_loop) = _run_both(x, grad)
    assert torch.equal(s_kernel, s_loop)
    torch.testing.assert_close(
        g_kernel, g_loop, rtol=1e-5, atol=4.0 * 2.0**-23 * float(grad.abs().max())
    )


def test_kernels_match_float64_reference(monkeypatch) -> None:
    """Both float32 implementations are as close to the float64 eager LIF as each other."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(6, 4, 500, generator=gen) * 1.4
    grad = torch.randn(x.shape, generator=gen)
    x64 = x.double().requires_grad_()
    EF.lif_multistep_eager(x64).backward(grad.double())
    (_, g_kernel), (_, g_loop) = _run_both(x, grad)
    err_kernel = float((g_kernel.double() - x64.grad).abs().max())
    err_loop = float((g_loop.double() - x64.grad).abs().max())
    assert err_kernel < 1e-5 and err_kernel <= 2 * err_loop + 1e-7


def test_non_contiguous_and_other_dtypes_use_the_loop(monkeypatch) -> None:
    """The tier allows kernels; the device dispatch takes them for contiguous float32 CPU
    tensors only."""
    monkeypatch.setenv("EISNN_CPU_KERNELS", "1")
    x = torch.rand(4, 6, 5)
    assert select_tier() == "kernel" and select_tier(kernel_ready=False) == "fused"
    with EF.use_tier("fused"):
        assert select_tier() == "fused"
    assert device_kernels(x, kernel=True) is cpu_kernels
    assert device_kernels(x, kernel=False) is None
    assert device_kernels(x.transpose(1, 2), kernel=True) is None
    assert device_kernels(x.double(), kernel=True) is None
    assert device_kernels(x.bfloat16(), kernel=True) is None
    monkeypatch.setenv("EISNN_CPU_KERNELS", "0")
    assert device_kernels(x, kernel=True) is None
    assert torch.equal(
        EF.lif_multistep(x.transpose(1, 2)), EF.lif_multistep_eager(x.transpose(1, 2))
    )


def test_missing_compiler_falls_back_with_one_warning(tmp_path) -> None:
    """Without a compiler the kernels are unusable, a warning says why, and the LIF still
    computes."""
    code = (
        "import warnings, torch\n"
        "from eisnn import functional as EF\n"
        "x = torch.rand(4, 3, 7)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    out = EF.lif_multistep(x); EF.lif_multistep(x)\n"
        "assert torch.equal(out, EF.lif_multistep_eager(x))\n"
        "messages = [str(w.message) for w in caught if 'CPU kernels' in str(w.message)]\n"
        "assert len(messages) == 1 and 'no-such-compiler' in messages[0], messages\n"
    )
    env = {**os.environ, "CC": "no-such-compiler", "EISNN_KERNEL_CACHE": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.iterdir())


def test_library_is_cached_by_source_and_flags(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EISNN_KERNEL_CACHE", str(tmp_path))
    first = cpu_kernels._build()
    assert first.parent == tmp_path and first.exists()
    mtime = first.stat().st_mtime_ns
    assert cpu_kernels._build() == first and first.stat().st_mtime_ns == mtime  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial files left


def _ei_case(spatial: tuple[int, ...], seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n, e, i = 6, 8, 3
    currents = torch.rand(n, e + i, *spatial, generator=gen)
    currents[0, e:, :2] = 0  # silent positions: zero denominators, replaced by the row minimum
    currents[1, e:] = 0  # a silent sample: row minimum +inf
    params = [
        torch.rand(e, i, generator=gen),
        torch.rand(i, generator=gen) + 0.1,
        torch.rand(e, generator=gen) + 0.5,
        torch.randn(e, generator=gen),
    ]
    return currents, params, torch.randn(n, e, *spatial, generator=gen)


@pytest.mark.parametrize("stabilization", ["adaptive", "epsilon", "none"])
@pytest.mark.parametrize("spatial", [(5, 7), (1, 1)])
@pytest.mark.parametrize("balanced", [False, True])
def test_ei_kernels_match_the_pytorch_ops(
    stabilization: str, spatial: tuple[int, ...], balanced: bool, monkeypatch
) -> None:
    """Forward bit-identical, backward to float rounding (its sums are reordered), against the
    PyTorch element-wise ops and the float64 eager reference (``balanced``: the currents are
    ``[a; I_I]``, the reference ``ei_integrate_balanced``)."""
    currents, params, grad = _ei_case(spatial)
    if stabilization == "none":
        currents[:, 8:] += 0.01
    options = {"stabilization": stabilization, "epsilon": 1e-3}
    results = []
    for kernel in (True, False):
        inputs = [currents.clone().requires_grad_(), *(p.clone().requires_grad_() for p in params)]
        out = EF.ei_integrate_fused(
            inputs[0], 8, *inputs[1:], **options, kernel=kernel, balanced=balanced
        )
        results.append((out.detach(), torch.autograd.grad(out, inputs, grad)))
    (out_kernel, grads_kernel), (out_ops, grads_ops) = results
    assert torch.equal(out_kernel, out_ops)
    inputs64 = [currents.double().requires_grad_(), *(p.double().requires_grad_() for p in params)]
    if balanced:
        ref = EF.ei_integrate_balanced(inputs64[0], 8, *inputs64[1:], **options)
    else:
        ref = EF.ei_integrate_eager(
            inputs64[0][:, :8], inputs64[0][:, 8:], *inputs64[1:], **options
        )
    grads_ref = torch.autograd.grad(ref, inputs64, grad.double())
    for name, got, ops, want in zip(
        ["currents", "w_ei", "g_i", "g_e", "b_e"], grads_kernel, grads_ops, grads_ref
    ):
        scale = float(want.abs().max())
        torch.testing.assert_close(got, ops, rtol=1e-4, atol=1e-6 * scale, msg=name)
        assert float((got.double() - want).abs().max()) <= 1e-5 * scale + 2 * float(
            (ops.double() - want).abs().max()
        ), name
