"""The GPU check of issue 16: E-I networks against their BN twins on one CUDA device, side by side
in one process, in fp32 / bf16 autocast / bf16 autocast + torch.compile; one table, the targets
judged, exit status 1 on a miss.

    PYTHONPATH=src python benchmarks/gpu_check.py                  # CUDA, about 5 minutes
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --steps 2 --small   # smoke test

Workloads: ResNet-18 on CIFAR-sized images (32x32, 3 channels, batch 128, T=4) and VGG-8 on DVS
event frames (48x48, 2 channels, batch 32, T=16). Each measurement is ``eisnn bench``'s
(``eisnn.benchmark.run_arch``): both twins built and E-I-initialized on one fixed random batch,
trained with SGD, warm-up steps (which include compiling), then the twins take turns for
``--steps`` steps each; the median step time (``torch.cuda.synchronize`` around each step),
images/s, and the peak memory of one warm step (``torch.cuda.max_memory_allocated``); then one
more training step under ``torch.cuda.set_sync_debug_mode("error")`` (a step that waits for the
host fails it). ``--small`` shrinks every workload (batch 2, T=2, width 0.25) to check that the
script runs; its figures are not judged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from eisnn import benchmark

MAX_TIME_RATIO = 1.3  # E-I / BN step time, bf16 eager and bf16 + compile
MAX_MEMORY_RATIO = 1.3  # E-I / BN peak memory, every precision
MIN_RESNET18_COMPILED_IMAGES_S = 10_000.0  # E-I ResNet-18, bf16 + compile


@dataclass(frozen=True)
class Workload:
    """One architecture at its benchmark size."""

    arch: str
    label: str
    batch: int
    T: int
    channels: int
    image_size: int
    frames: bool


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (``eisnn bench``'s ``--dtype``) and whether the models are compiled."""

    name: str
    dtype: str
    compile: bool


WORKLOADS = (
    Workload("resnet18", "ResNet-18, CIFAR 32x32", 128, 4, 3, 32, False),
    Workload("vgg8", "VGG-8, DVS frames 48x48", 32, 16, 2, 48, True),
)
PRECISIONS = (
    Precision("fp32", "fp32", False),
    Precision("bf16", "bf16", False),
    Precision("bf16+compile", "bf16", True),
)


@dataclass
class Row:
    """The two twins of one workload in one precision."""

    workload: Workload
    precision: Precision
    ei: benchmark.Result
    bn: benchmark.Result

    @property
    def time_ratio(self) -> float:
        return self.ei.step_s / self.bn.step_s

    @property
    def memory_ratio(self) -> float:
        return self.ei.peak_bytes / self.bn.peak_bytes


def bench_args(
    args: argparse.Namespace, work: Workload, precision: Precision
) -> argparse.Namespace:
    """``eisnn bench``'s options for one workload and precision."""
    small = ["--batch", "2", "--T", "2", "--width", "0.25"]
    size = small if args.small else ["--batch", str(work.batch), "--T", str(work.T)]
    argv = [
        *size,
        *(["--frames"] if work.frames else []),
        *(["--compile"] if precision.compile else []),
        *(["--channels-last"] if args.channels_last else []),
        "--channels", str(work.channels),
        "--image-size", str(work.image_size),
        "--device", args.device,
        "--dtype", precision.dtype,
        "--warmup", str(args.warmup),
        "--steps", str(args.steps),
        "--sync-check",
    ]  # fmt: skip
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> list[Row]:
    """Every workload in every precision (``eisnn.benchmark.run_arch`` prints as it goes)."""
    device = torch.device(args.device)
    rows = []
    for work in WORKLOADS:
        for precision in PRECISIONS:
            if precision.name not in args.precisions:
                continue
            print(f"== {work.label}, {precision.name}", flush=True)
            ei, bn = benchmark.run_arch(work.arch, bench_args(args, work, precision), device)
            rows.append(Row(work, precision, ei, bn))
            torch._dynamo.reset()  # compiled graphs of one workload are not reused by the next
    return rows


def misses(row: Row) -> list[str]:
    """The targets ``row`` misses, in words."""
    found = []
    if row.precision.dtype == "bf16" and row.time_ratio > MAX_TIME_RATIO:
        found.append(f"time ratio {row.time_ratio:.2f} > {MAX_TIME_RATIO}")
    if row.memory_ratio > MAX_MEMORY_RATIO:
        found.append(f"memory ratio {row.memory_ratio:.2f} > {MAX_MEMORY_RATIO}")
    compiled_resnet = row.workload.arch == "resnet18" and row.precision.name == "bf16+compile"
    if compiled_resnet and row.ei.images_per_s < MIN_RESNET18_COMPILED_IMAGES_S:
        found.append(f"E-I {row.ei.images_per_s:.0f} img/s < {MIN_RESNET18_COMPILED_IMAGES_S:.0f}")
    for result in (row.ei, row.bn):
        if result.sync not in (None, "ok"):
            found.append(f"{result.name}: {result.sync}")
    return found


def print_table(rows: list[Row], judged: bool) -> bool:
    """One markdown table of every row with its verdict; True when every target is met."""
    print(
        "| workload | precision | E-I step | BN step | E-I/BN time | E-I img/s | BN img/s "
        "| E-I peak | BN peak | E-I/BN memory | sync (E-I, BN) | targets |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    all_met = True
    for row in rows:
        missed = misses(row)
        all_met &= not missed
        verdict = ("; ".join(missed) or "met") if judged else "not judged (--small)"
        print(
            f"| {row.workload.label} (batch {row.ei.batch}) | {row.precision.name} "
            f"| {row.ei.step_s * 1e3:.1f} ms | {row.bn.step_s * 1e3:.1f} ms "
            f"| {row.time_ratio:.2f} | {row.ei.images_per_s:.0f} | {row.bn.images_per_s:.0f} "
            f"| {row.ei.peak_bytes / 2**20:.0f} MiB | {row.bn.peak_bytes / 2**20:.0f} MiB "
            f"| {row.memory_ratio:.2f} | {row.ei.sync or 'n/a'}, {row.bn.sync or 'n/a'} "
            f"| {verdict} |"
        )
    return all_met


def environment(device: torch.device) -> str:
    """torch, CUDA and Triton versions and the device's name, in one line."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"torch {torch.__version__}, cuda {torch.version.cuda}, triton {triton_version}, {where}"


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table; status 1 when a target is missed (never with ``--small``), 2 on
    a bad option."""
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (smoke test)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compile included)")
    parser.add_argument("--small", action="store_true", help="tiny sizes (smoke test, not judged)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=[p.name for p in PRECISIONS],
        default=[p.name for p in PRECISIONS],
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: CUDA is not available (--device cpu: smoke test)", file=sys.stderr)
        return 2
    if args.steps < 1 or args.warmup < 0:
        print("gpu_check: error: --steps must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    print(environment(device), flush=True)
    try:
        rows = measure(args)
    except benchmark.BenchmarkError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    met = print_table(rows, judged=not args.small)
    return 0 if met or args.small else 1


if __name__ == "__main__":
    raise SystemExit(main())
