"""E-I network vs its BatchNorm twin: training-step time and peak memory, judged against the
project's targets (the measurement is ``eisnn bench``; the targets live here, not in the package).

    PYTHONPATH=src python benchmarks/train_step.py            # CPU, VGG-8 b32 and ResNet-18 b16
    PYTHONPATH=src python benchmarks/train_step.py --check    # exit status 1 when one is missed
    PYTHONPATH=src python benchmarks/train_step.py --device cuda --models resnet18 --batch 128 \
        --dtype bf16
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from eisnn import benchmark

#: Targets of the E-I / BN ratios per architecture: (step time, peak memory), on the CPU
#: (2 threads, the defaults of ``eisnn bench``; see docs/performance.md).
TARGETS: dict[str, benchmark.Ratios] = {
    "vgg8": benchmark.Ratios(1.3, 1.3),
    "resnet18": benchmark.Ratios(1.35, 1.3),
}


def verdict(arch: str, ratios: benchmark.Ratios) -> tuple[str, bool]:
    """One line comparing ``arch``'s ratios with its targets, and whether both are met (an
    architecture without targets meets them)."""
    target = TARGETS.get(arch)
    if target is None:
        return f"  {arch}: no targets", True
    ok_time, ok_mem = ratios.time <= target.time, ratios.memory <= target.memory
    line = (
        f"  {arch}: step time {ratios.time:.3f} (target <= {target.time}: "
        f"{'ok' if ok_time else 'MISSED'}), peak memory {ratios.memory:.3f} "
        f"(target <= {target.memory}: {'ok' if ok_mem else 'MISSED'})"
    )
    return line, ok_time and ok_mem


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the verdicts; with ``--check`` the status is 1 when a target is missed."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/train_step.py", description=__doc__.splitlines()[0]
    )
    benchmark.add_arguments(parser)
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    try:
        measured = benchmark.measure(args)
    except benchmark.BenchmarkError as err:
        print(f"train_step: error: {err}", file=sys.stderr)
        return 2
    print("targets:")
    all_ok = True
    for arch, ratios in measured.items():
        line, ok = verdict(arch, ratios)
        print(line)
        all_ok &= ok
    return 1 if args.check and not all_ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
