"""The Triton kernels (``functional.triton_kernels``) against the eager float64 references and the
float32 C kernels, on small shapes.

Without CUDA they run on CPU tensors through Triton's interpreter: this module sets
``TRITON_INTERPRET=1`` before anything imports ``triton`` (for the whole session, so CUDA-less CI
tests them). With CUDA it leaves the interpreter off, and the same checks run compiled on CUDA
tensors (the tests marked ``cuda``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from eisnn import functional as EF  # noqa: E402
from eisnn.functional import cpu_kernels, triton_kernels  # noqa: E402

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
DEVICES = [
    pytest.param(
        "cpu",
        marks=pytest.mark.skipif(not INTERPRETING, reason="the Triton interpreter is off"),
    ),
    pytest.param(
        "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not CUDA, reason="no CUDA device")]
    ),
]
LONG = triton_kernels.HISTORY_STEPS + 3  # beyond the register history: the buffer path
C_KERNELS = cpu_kernels.usable(torch.zeros(1))


def _scaled_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest error relative to the largest reference entry (float64)."""
    return float((got.double().cpu() - want).abs().max() / want.abs().max().clamp_min(1e-30))


def _lif_case(steps: int, device: str, elements: tuple[int, ...] = (3, 37)):
    gen = torch.Generator().manual_seed(steps)
    x = torch.rand(steps, *elements, generator=gen) * 1.6
    x.view(-1)[:20] = 1.0  # H == V_th at t = 0: a spike
    return x.to(device), torch.randn(x.shape, generator=gen).to(device)


def _lif_reference(x: torch.Tensor, grad: torch.Tensor, tau: float, surrogate: str):
    """Spikes and ``dL/dX`` of the eager LIF in float64."""
    x64 = x.detach().double().requires_grad_()
    spikes = EF.lif_multistep_eager(x64, tau, 1.0, surrogate, 4.0)
    spikes.backward(grad.double())
    return spikes.detach(), x64.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("surrogate", ["sigmoid", "arctan"])
@pytest.mark.parametrize("tau", [2.0, 3.0])
@pytest.mark.parametrize("steps", [1, 4, LONG])
def test_lif_matches_the_eager_references(
    steps: int, tau: float, surrogate: str, device: str
) -> None:
    """Spikes equal to the eager loop in float32 (same rounding) and float64; ``dL/dX`` within
    1e-5 of float64 (relative to its largest entry) and as close as the C kernel's."""
    x, grad = _lif_case(steps, device)
    spikes = triton_kernels.lif_forward(x, tau, 1.0)
    grad_x = triton_kernels.lif_backward(x, grad, tau, 1.0, surrogate, 4.0)
    want_spikes, want_grad = _lif_reference(x, grad, tau, surrogate)
    assert torch.equal(spikes, EF.lif_multistep_eager(x, tau, 1.0, surrogate, 4.0))
    assert torch.equal(spikes.double(), want_spikes)
    assert 0.05 < float(spikes.mean()) < 0.95
    assert _scaled_error(grad_x, want_grad) < 1e-5
    if C_KERNELS:
        x_cpu, grad_cpu = x.cpu(), grad.cpu()
        assert torch.equal(spikes.cpu(), cpu_kernels.lif_forward(x_cpu, tau, 1.0))
        c_grad = cpu_kernels.lif_backward(x_cpu, grad_cpu, tau, 1.0, surrogate, 4.0)
        atol = 4.0 * 2.0**-23 * float(grad.abs().max())
        torch.testing.assert_close(grad_x.cpu(), c_grad, rtol=1e-5, atol=atol)


LOW = [torch.float16, torch.bfloat16]


def _rounded_once(got: torch.Tensor, full: torch.Tensor) -> bool:
    """Whether ``got`` (float16 or bfloat16) is the float32 ``full`` rounded to nearest even; in
    Triton's interpreter, which truncates float32 to bfloat16, rounded toward zero is accepted."""
    nearest = full.to(got.dtype)
    if not (INTERPRETING and got.device.type == "cpu" and got.dtype == torch.bfloat16):
        return torch.equal(got, nearest)
    truncated = (full.view(torch.int32) & -65536).view(torch.float32).to(got.dtype)
    return bool(((got == nearest) | (got == truncated)).all())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tau", [3.0, 2.2])
def test_lif_rounds_the_membrane_like_the_eager_loop_on_its_device(tau: float, device: str) -> None:
    """``V / tau`` rounds as PyTorch's division by a Python scalar on the device (a true division
    on the CPU, a product with the float32 reciprocal on CUDA). Step 2 gets ``1 - max(y, y')``,
    ``y`` the decayed membrane under that rounding, ``y'`` under the other: ``H`` is exactly the
    threshold where ``y >= y'`` and one ulp below it elsewhere (all values in ``[0.5, 1]``, where
    these sums are exact), so the other rounding would flip every spike where they differ."""
    low = 0.51 / (1.0 - 1.0 / tau)
    v = low + (1.0 - low) * torch.rand(4096, generator=torch.Generator().manual_seed(5))
    v = v.to(device)
    decayed = v - v / tau
    true_division = v - v / torch.full_like(v, tau)
    one, divisor = torch.tensor([1.0, tau], dtype=torch.float32)
    reciprocal = v - v * float(one / divisor)
    assert torch.equal(decayed, true_division) or torch.equal(decayed, reciprocal)
    other = reciprocal if torch.equal(decayed, true_division) else true_division
    assert not torch.equal(other, decayed), "the inputs must tell the two roundings apart"
    x = torch.stack([v, 1.0 - torch.maximum(decayed, other)])
    spikes = triton_kernels.lif_forward(x, tau, 1.0)
    assert not spikes[0].any() and torch.equal(spikes[1], (decayed >= other).float())
    assert torch.equal(spikes, EF.lif_multistep_eager(x, tau))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("steps", [4, LONG])
def test_lif_computes_low_precision_inputs_in_float32(
    steps: int, dtype: torch.dtype, device: str
) -> None:
    """float16/bfloat16 inputs: spikes and ``dL/dX`` in that dtype, the float32 results of the
    same values rounded once (the membrane history stays float32 on both paths)."""
    x, grad = _lif_case(steps, device, elements=(300,))
    x, grad = x.to(dtype), grad.to(dtype)
    spikes = triton_kernels.lif_forward(x, 3.0, 1.0)
    grad_x = triton_kernels.lif_backward(x, grad, 3.0, 1.0, "sigmoid", 4.0)
    assert spikes.dtype == grad_x.dtype == dtype
    assert torch.equal(spikes, triton_kernels.lif_forward(x.float(), 3.0, 1.0).to(dtype))
    full = triton_kernels.lif_backward(x.float(), grad.float(), 3.0, 1.0, "sigmoid", 4.0)
    assert _rounded_once(grad_x, full)


@pytest.mark.parametrize("device", DEVICES)
def test_lif_covers_several_programs(device: str) -> None:
    """More elements than one program holds (masked tails in both kernels)."""
    x, grad = _lif_case(3, device, elements=(triton_kernels.LIF_BLOCK + 77,))
    spikes = triton_kernels.lif_forward(x, 2.0, 1.0)
    want_spikes, want_grad = _lif_reference(x, grad, 2.0, "sigmoid")
    assert torch.equal(spikes.double().cpu(), want_spikes.cpu())
    grad_x = triton_kernels.lif_backward(x, grad, 2.0, 1.0, "sigmoid", 4.0)
    assert _scaled_error(grad_x, want_grad) < 1e-5


N, E, N_I = 6, 8, 3


def _ei_case(mode: str, positions: int, device: str, seed: int = 0):
    """Stacked currents ``[N, E + N_I, P]`` with silent positions in sample 0 and a silent sample 1
    (zero denominators; row minimum ``+inf``), and the parameters ``w_ei, g_i, g_e, b_e``."""
    gen = torch.Generator().manual_seed(seed)
    currents = torch.rand(N, E + N_I, positions, generator=gen)
    currents[0, E:, :2] = 0
    currents[1, E:] = 0
    if mode == "none":
        currents[:, E:] += 0.01
    params = [
        torch.rand(E, N_I, generator=gen),
        torch.rand(N_I, generator=gen) + 0.1,
        torch.rand(E, generator=gen) + 0.5,
        torch.randn(E, generator=gen),
    ]
    grad = torch.randn(N, E, positions, generator=gen)
    return currents.to(device), [p.to(device) for p in params], grad.to(device)


def _ei_kernels(module, currents, params, grad, mode: str, epsilon: float, lateral=None):
    """``ei_forward`` then ``ei_backward`` of ``module`` on buffers laid out as the fused node lays
    them out (``lateral``: ``(sub, div)``, copied; else computed from ``params``): returns
    ``out, row_min, a, dI_EE, -dL/d div, dg_E, db_E``."""
    w_ei, g_i, g_e, b_e = params
    lateral = EF.lateral_inhibition(w_ei, g_i, currents[:, E:]) if lateral is None else lateral
    sub, div = (t.clone(memory_format=torch.contiguous_format) for t in lateral)
    out, row_min = module.ei_forward(currents[:, :E], sub, div, g_e, b_e, mode, epsilon)
    grad_currents = torch.empty_like(currents)
    d_ee = grad_currents[:, :E]
    sum_g, sum_b = module.ei_backward(grad, sub, div, d_ee, g_e, row_min, mode, epsilon)
    return out, row_min, sub, d_ee, div, sum_g, sum_b


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("positions", [1, 35, triton_kernels.EI_TILE + 100])
@pytest.mark.parametrize("mode", ["adaptive", "epsilon", "none"])
def test_ei_matches_the_eager_float64_reference(mode: str, positions: int, device: str) -> None:
    """Output and every gradient (``dI_EE``, ``-dL/d div`` through ``dL/dI_I``, ``dg_E``,
    ``db_E``) within 1e-5 of ``ei_integrate_eager`` in float64; bit-identical to the C kernel."""
    currents, params, grad = _ei_case(mode, positions, device)
    got = _ei_kernels(triton_kernels, currents, params, grad, mode, 1e-3)
    out, _, _, d_ee, minus_grad_div, sum_g, sum_b = got
    leaves = [t.detach().double().cpu().requires_grad_() for t in (currents, *params)]
    reference = EF.ei_integrate_eager(
        leaves[0][:, :E], leaves[0][:, E:], *leaves[1:], stabilization=mode, epsilon=1e-3
    )
    want = torch.autograd.grad(reference, leaves, grad.double().cpu())
    w_ei, g_i = (p.double().cpu() for p in params[:2])
    grad_i_i = -EF.mix_channels(w_ei.t(), d_ee.double().cpu()) - g_i.view(1, -1, 1) * (
        EF.mix_channels(w_ei.t(), minus_grad_div.double().cpu())
    )  # dL/dI_I = -W^T dI_EE + g_I W^T dL/d div
    assert _scaled_error(out, reference.detach()) < 1e-5
    assert _scaled_error(d_ee, want[0][:, :E]) < 1e-5
    assert _scaled_error(grad_i_i, want[0][:, E:]) < 1e-5
    assert _scaled_error(sum_g, want[3]) < 1e-5
    assert _scaled_error(sum_b, want[4]) < 1e-5
    if C_KERNELS:
        cpu = [t.cpu() for t in (currents, *params, grad)]
        c_got = _ei_kernels(cpu_kernels, cpu[0], cpu[1:5], cpu[5], mode, 1e-3)
        for name, mine, theirs in zip(["out", "row_min", "a", "dI_EE", "div"], got, c_got):
            assert torch.equal(mine.cpu(), theirs), name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["adaptive", "epsilon"])
def test_ei_balanced_forward_reads_a_and_matches_the_references(mode: str, device: str) -> None:
    """``i_ee=None``: ``sub`` holds ``a`` (left as it is); ``out`` within 1e-5 of the eager
    balanced node in float64 (silent positions and a silent sample included), bit-identical to
    the C kernel's balanced mode."""
    currents, params, _ = _ei_case(mode, 35, device)
    _, div = EF.lateral_inhibition(params[0], params[1], currents[:, E:])
    a, div = currents[:, :E].contiguous(), div.contiguous()
    given = a.clone()
    out, row_min = triton_kernels.ei_forward(None, a, div, *params[2:], mode, 1e-3)
    assert torch.equal(a, given)
    leaves = [t.double().cpu() for t in (currents, *params)]
    reference = EF.ei_integrate_balanced(
        leaves[0], E, *leaves[1:], stabilization=mode, epsilon=1e-3
    )
    assert _scaled_error(out, reference) < 1e-5
    if C_KERNELS:
        cpu = [t.cpu() for t in (a, div, *params[2:])]
        c_out, c_row_min = cpu_kernels.ei_forward(None, *cpu, mode, 1e-3)
        assert torch.equal(out.cpu(), c_out) and torch.equal(row_min.cpu(), c_row_min)


@pytest.mark.parametrize("device", DEVICES)
def test_adaptive_row_minimum_skips_zeros_and_propagates_nan(device: str) -> None:
    """Per sample: the smallest non-zero entry, ``+inf`` for a silent sample, NaN when the
    sample holds one; as ``stabilize_`` computes them."""
    currents, params, grad = _ei_case("adaptive", 35, device)
    currents[2, E + 1, 5] = float("nan")
    _, row_min, *_ = _ei_kernels(triton_kernels, currents, params, grad, "adaptive", 0.0)
    _, div = EF.lateral_inhibition(params[0], params[1], currents[:, E:])
    want = EF.ei.stabilize_(div.clone(), "adaptive", 0.0)
    torch.testing.assert_close(row_min, want, rtol=0, atol=0, equal_nan=True)
    assert row_min[1].isinf() and row_min[2].isnan() and row_min[0] > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", LOW)
def test_ei_computes_low_precision_inputs_in_float32(dtype: torch.dtype, device: str) -> None:
    """float16/bfloat16 buffers: ``out``, ``a`` and ``dI_EE`` in that dtype, the float32 results
    of the same values rounded once; ``-dL/d div`` that of the stored (rounded) ``a``."""
    currents, params, grad = _ei_case("adaptive", 35, device)
    currents, params, grad = currents.to(dtype), [p.to(dtype) for p in params], grad.to(dtype)
    sub, div = EF.lateral_inhibition(params[0], params[1], currents[:, E:])
    low = _ei_kernels(triton_kernels, currents, params, grad, "adaptive", 0.0, (sub, div))
    full = _ei_kernels(
        *(triton_kernels, currents.float(), [p.float() for p in params], grad.float()),
        *("adaptive", 0.0, (sub.float(), div.float())),
    )
    assert torch.equal(low[1], full[1])  # row minima: float32
    for name, got, want in zip(["out", "a", "dI_EE"], [low[0], *low[2:4]], [full[0], *full[2:4]]):
        assert got.dtype == dtype and _rounded_once(got, want), name
    q = div.float()
    EF.ei.stabilize_(q, "adaptive", 0.0)
    product = grad.float() / q * low[2].float()
    assert _rounded_once(low[4], params[2].float().view(1, -1, 1) * product / q)


def test_bad_inputs_are_refused_in_one_line(monkeypatch) -> None:
    x = torch.rand(3, 5)
    with pytest.raises(ValueError, match="float32, bfloat16 or float16, not torch.float64"):
        triton_kernels.lif_forward(x.double(), 2.0, 1.0)
    with pytest.raises(ValueError, match="no surrogate 'tanh'"):
        triton_kernels.lif_backward(x, x, 2.0, 1.0, "tanh", 4.0)
    with pytest.raises(ValueError, match="unknown stabilization 'clip'"):
        triton_kernels.ei_forward(x, x, x, x, x, "clip", 0.0)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="take CUDA tensors"):
        triton_kernels.lif_forward(x, 2.0, 1.0)
    assert triton_kernels.available() == CUDA


def test_eisnn_imports_without_triton() -> None:
    """``import eisnn`` never needs triton; without it the kernels say they are unavailable."""
    code = (
        "import sys\n"
        "sys.modules['triton'] = None  # import triton now raises ImportError\n"
        "import eisnn\n"
        "from eisnn.functional import triton_kernels\n"
        "assert not triton_kernels.available()\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


COMPILE_SCRIPT = textwrap.dedent(
    """
    from types import SimpleNamespace

    import torch, triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import mangle_type
    from eisnn.functional import triton_jit, triton_kernels as tk

    launches = []

    class Recorder:
        # records kernel[grid](*args, **kwargs) instead of launching it

        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append((self.kernel, args, kwargs))

    names = [n for n in dir(triton_jit) if n.endswith("_kernel")]
    kernels = SimpleNamespace(**{n: Recorder(getattr(triton_jit, n)) for n in names})
    tk._kernels = lambda: kernels
    tk._check = lambda *tensors: None
    x = torch.rand(4, 3, 5)
    tk.lif_forward(x, 3.0, 1.0)
    for steps in (4, tk.HISTORY_STEPS + 1):
        for surrogate in ("sigmoid", "arctan"):
            tk.lif_backward(x[:1].expand(steps, 3, 5), x[:1].expand(steps, 3, 5), 3.0, 1.0,
                            surrogate, 4.0)
    currents = torch.rand(2, 5, 7)
    for mode in ("adaptive", "epsilon", "none"):
        sub, div = torch.rand(2, 3, 7), torch.rand(2, 3, 7)
        out, row_min = tk.ei_forward(currents[:, :3], sub, div, x[0, 0, :3], x[0, 0, :3], mode, 0.1)
        tk.ei_backward(out, sub, div, currents[:, :3], x[0, 0, :3], row_min, mode, 0.1)
    for kernel, args, kwargs in launches:
        names = kernel.arg_names
        constants = {k: v for k, v in kwargs.items() if k in names}
        options = {k: v for k, v in kwargs.items() if k not in names}
        if "RECIPROCAL" in constants:
            constants["RECIPROCAL"] = True  # as launched on CUDA tensors
        signature = {name: "constexpr" for name in constants}
        signature.update(zip([n for n in names if n not in constants], map(mangle_type, args)))
        source = ASTSource(
            kernel, signature, constexprs={(names.index(k),): v for k, v in constants.items()}
        )
        ptx = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]
        assert "fma." not in ptx, kernel.fn.__name__
        if kernel.fn.__name__ == "ei_forward_kernel":
            assert "div.rn.f32" in ptx
    print(len(launches))
    """
)


def test_kernels_compile_for_a_gpu_without_fused_multiply_adds(tmp_path) -> None:
    """Every kernel as the wrappers launch it compiles for CUDA (sm_90, no GPU needed) outside
    the interpreter, and its PTX has no fused multiply-add (which would round differently from
    the eager ops); the E-I forward divides with IEEE rounding."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == 12  # 1 + 4 LIF launches, 3 + 2 + 2 E-I launches
