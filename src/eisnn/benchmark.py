"""Training-step benchmark: each E-I network against its BatchNorm twin (``eisnn bench``).

For every architecture, both twins are built from the registry, initialized (E-I Init on the
benchmark batch for the E-I model) and trained on one fixed random batch with SGD (momentum 0.9,
weight decay 5e-4; Dale's projection after each step for the E-I model). One training step is
``zero_grad -> forward -> cross-entropy -> backward -> optimizer step``. On CPU, glibc's malloc
first keeps freed memory for reuse (``eisnn.allocator``, as for every ``eisnn`` command;
``EISNN_RETAIN_MEMORY=0`` keeps its defaults). Reported per model:

- the median wall time of ``--steps`` warm steps (after ``--warmup`` steps), the twins taking
  turns step by step; on CPU also the median process CPU time (less sensitive to other load on
  a shared machine, but it counts the threads' busy-waiting too);
- the peak memory of one warm step: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the
  persistent tensors (parameters, gradients, buffers, optimizer state, batch) plus the peak of the
  bytes allocated minus freed by the step, in operator order, as recorded by the PyTorch profiler
  (allocations that live only inside one operator are not seen, for either twin);
- images per second (batch / median step time);

and the E-I / BN ratios of time (of the medians) and memory; the spread of the per-round ratios
(E-I step / the BN step that followed it) shows how much the machine's load moved the
measurement. The project's targets for these ratios are applied by ``benchmarks/train_step.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import dale
from .allocator import retain_freed_memory
from .init import ei_init
from .models import create_model

DEFAULT_BATCH: dict[str, int] = {"vgg8": 32, "resnet18": 16}
DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass
class Result:
    """Measurements of one model."""

    name: str
    batch: int
    step_s: float
    cpu_s: float
    peak_bytes: int
    steps_s: list[float]
    sync: str | None = None  # CUDA sync check of one step: "ok" or the error (None: not run)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.step_s


@dataclass(frozen=True)
class Ratios:
    """E-I / BN ratios of one architecture: step time (of the medians) and peak memory."""

    time: float
    memory: float


class BenchmarkError(ValueError):
    """A bad option value or model name (one line)."""


@dataclass
class Setup:
    """A model ready to train on one fixed batch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    autocast: torch.dtype | None

    def step(self) -> None:
        """One training step: forward, loss, backward, optimizer step (and Dale's projection)."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            self.x.device.type,
            dtype=self.autocast or torch.float32,
            enabled=self.autocast is not None,
        ):
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def persistent_bytes(self) -> int:
        """Bytes of the tensors that live across steps (each storage counted once)."""
        tensors = [*self.model.parameters(), *self.model.buffers(), self.x, self.y]
        tensors += [p.grad for p in self.model.parameters() if p.grad is not None]
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
        return sum(storages.values())


def build(name: str, args: argparse.Namespace, batch: int, device: torch.device) -> Setup:
    """Create, initialize and wrap one registry model with its optimizer and a fixed batch."""
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    options = {"image_size": args.image_size} | ({"width": args.width} if args.width else {})
    model = create_model(name, args.num_classes, args.channels, args.T, **options).to(device)
    frames = (args.T,) if args.frames else ()  # event frames [B, T, C, H, W]
    shape = (batch, *frames, args.channels, args.image_size, args.image_size)
    x = torch.rand(shape, generator=gen).to(device)
    y = torch.randint(0, args.num_classes, (batch,), generator=gen).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
    ei_init(model, x)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    dale.attach(optimizer, model)
    if args.compile:
        model = torch.compile(model)
    return Setup(model, optimizer, x, y, DTYPES[args.dtype])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(setup: Setup, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one training step."""
    _sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    setup.step()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


def time_steps(
    setups: list[Setup], warmup: int, steps: int, device: torch.device
) -> list[list[tuple[float, float]]]:
    """Wall-clock and CPU seconds of ``steps`` warm training steps of each setup.

    The setups take turns step by step (one round = one step of each), so that a change of
    machine load affects all alike.
    """
    for setup in setups:
        for _ in range(warmup):
            setup.step()
    times: list[list[tuple[float, float]]] = [[] for _ in setups]
    for _ in range(steps):
        for setup, record in zip(setups, times):
            record.append(timed_step(setup, device))
    return times


def cpu_step_peak_bytes(setup: Setup) -> int:
    """Persistent bytes plus the profiler's peak of (allocated - freed) bytes during one step.

    Gradients are released before profiling (the step would release them anyway), so that every
    byte freed during the step was also allocated during it.
    """
    setup.optimizer.zero_grad(set_to_none=True)
    base = setup.persistent_bytes()
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        setup.step()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return base + peak


def step_peak_bytes(setup: Setup, device: torch.device) -> int:
    """Peak memory of one warm training step (see the module docstring for the method)."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        setup.step()
        _sync(device)
        return torch.cuda.max_memory_allocated(device)
    return cpu_step_peak_bytes(setup)


@contextlib.contextmanager
def _sync_debug_error() -> Iterator[None]:
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def check_no_sync(setup: Setup) -> str:
    """Run one warm step with CUDA sync debug mode ``error``: ``"ok"`` or the error raised."""
    try:
        with _sync_debug_error():
            setup.step()
    except RuntimeError as err:
        return f"host synchronization: {str(err).splitlines()[0]}"
    return "ok"


def run_arch(arch: str, args: argparse.Namespace, device: torch.device) -> list[Result]:
    """Measure ``ei_<arch>`` and ``bn_<arch>``: step times interleaved, then peak memory of each."""
    batch = args.batch or DEFAULT_BATCH.get(arch, 32)
    names = [f"{kind}_{arch}" for kind in ("ei", "bn")]
    setups = [build(name, args, batch, device) for name in names]
    records = time_steps(setups, args.warmup, args.steps, device)
    results = []
    for name, setup, record in zip(names, setups, records):
        step_s, cpu_s = (
            statistics.median(w for w, _ in record),
            statistics.median(c for _, c in record),
        )
        peak = step_peak_bytes(setup, device)
        sync = check_no_sync(setup) if args.sync_check and device.type == "cuda" else None
        if sync is not None:
            print(f"  {name}: sync check {sync}", flush=True)
        results.append(Result(name, batch, step_s, cpu_s, peak, [w for w, _ in record], sync))
        cpu = f"  (cpu time {cpu_s * 1e3:9.1f} ms)" if device.type == "cpu" else ""
        print(
            f"  {name:<14} step {step_s * 1e3:9.1f} ms  peak {peak / 2**20:9.1f} MiB  "
            f"{batch / step_s:8.1f} img/s{cpu}",
            flush=True,
        )
    return results


def report(arch: str, ei: Result, bn: Result) -> Ratios:
    """Print the E-I / BN ratios and the spread of the per-round ratios; returns the ratios."""
    ratios = Ratios(ei.step_s / bn.step_s, ei.peak_bytes / bn.peak_bytes)
    cpu = f" [cpu time {ei.cpu_s / bn.cpu_s:.3f}]" if ei.cpu_s > 0 and bn.cpu_s > 0 else ""
    rounds = sorted(e / b for e, b in zip(ei.steps_s, bn.steps_s))
    print(
        f"  {arch}: E-I/BN step time {ratios.time:.3f}{cpu}, peak memory {ratios.memory:.3f}\n"
        f"  {arch}: per-round E-I/BN step time ratios: median {statistics.median(rounds):.3f}, "
        f"range {rounds[0]:.3f}-{rounds[-1]:.3f} over {len(rounds)} rounds",
        flush=True,
    )
    return ratios


def run_all(
    args: argparse.Namespace, device: torch.device, retained: bool = False
) -> dict[str, Ratios]:
    """Measure every architecture of ``args.models`` and print the report; returns the ratios
    by architecture (a model the registry does not know raises :class:`BenchmarkError`)."""
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {args.threads} threads"
    )
    print(
        f"eisnn bench: torch {torch.__version__}, {where}, T={args.T}, "
        f"{args.image_size}x{args.image_size}, {args.dtype}"
        f"{', channels-last' if args.channels_last else ''}"
        f"{', compiled' if args.compile else ''}, "
        f"median of {args.steps} steps after {args.warmup} warm-up"
        f"{', freed memory retained' if retained and device.type == 'cpu' else ''}",
        flush=True,
    )
    ratios = {}
    for arch in args.models:
        print(f"{arch} (batch {args.batch or DEFAULT_BATCH.get(arch, 32)}):", flush=True)
        try:
            ei, bn = run_arch(arch, args, device)
        except ValueError as err:
            raise BenchmarkError(str(err)) from None
        ratios[arch] = report(arch, ei, bn)
    return ratios


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``main`` and the ``eisnn bench`` subcommand)."""
    parser.add_argument(
        "--models",
        nargs="+",
        default=["vgg8", "resnet18"],
        help="architectures (registry names without ei_/bn_)",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size (default: vgg8 32, resnet18 16)"
    )
    parser.add_argument("--T", type=int, default=4, help="time steps")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3, help="input channels")
    parser.add_argument(
        "--frames", action="store_true", help="event-frame input [B, T, C, H, W] (else static)"
    )
    parser.add_argument(
        "--width", type=float, default=None, help="channel multiplier of the networks (default 1)"
    )
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp32", help="fp32, or autocast to bf16/fp16"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument(
        "--sync-check",
        action="store_true",
        help="CUDA: fail a step that synchronizes with the host",
    )


def _invalid(args: argparse.Namespace) -> str | None:
    """A one-line description of the first bad option value, or None."""
    for key in ("T", "image_size", "channels", "threads", "steps", "num_classes"):
        if getattr(args, key) < 1:
            return f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}"
    if args.warmup < 0:
        return f"--warmup must be >= 0, got {args.warmup}"
    if args.width is not None and args.width <= 0:
        return f"--width must be > 0, got {args.width}"
    if args.batch is not None and args.batch < 1:
        return f"--batch must be >= 1, got {args.batch}"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return "--device cuda requested but CUDA is not available"
    if not args.device.startswith("cuda") and args.dtype == "fp16":
        return "fp16 autocast is for CUDA; use bf16 on CPU"
    return None


def measure(args: argparse.Namespace) -> dict[str, Ratios]:
    """Run the benchmark with parsed options and print it; returns the E-I / BN ratios by
    architecture. A bad option or model raises :class:`BenchmarkError`."""
    problem = _invalid(args)
    if problem is not None:
        raise BenchmarkError(problem)
    device = torch.device(args.device)
    retained = retain_freed_memory()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run_all(args, device, retained)
    finally:
        torch.set_num_threads(previous_threads)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed options; returns the exit status (2: bad option)."""
    try:
        measure(args)
    except BenchmarkError as err:
        print(f"eisnn bench: error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m eisnn.benchmark [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="eisnn bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
