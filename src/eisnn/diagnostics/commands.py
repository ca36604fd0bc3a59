"""The ``eisnn plot`` and ``eisnn study`` subcommands (registered in :mod:`eisnn.cli`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import InputNotFoundError


def configure_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (holds metrics.csv)")


def run_plot(args: argparse.Namespace) -> int:
    from eisnn.diagnostics.plots import plot_diagnostics
    from eisnn.train.metrics import read_metrics_csv
    from eisnn.train.plots import plot_run

    run_dir = Path(args.run_dir)
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise InputNotFoundError(f"{run_dir} is not a run directory: no metrics.csv in it")
    history = read_metrics_csv(metrics)
    plot_run(history, run_dir / "plots")
    written = [run_dir / "plots" / "learning_curves.png", run_dir / "plots" / "firing_rates.png"]
    written += plot_diagnostics(history, run_dir)
    for path in written:
        print(path)
    return 0


def configure_study(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/study", help="folder of the study's runs (finished runs are reused)")
    p.add_argument("--data-dir", default="data", help="dataset root (digits_dvs recordings are generated there)")
    p.add_argument("--datasets", nargs="+", default=["digits", "digits_dvs"], choices=["digits", "digits_dvs"])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per cell")
    p.add_argument("--workers", type=int, default=2, help="parallel single-threaded training processes")
    p.add_argument("--report", default="docs/results.md", help="markdown report to write (figures beside it)")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")


def run_study(args: argparse.Namespace) -> int:
    from eisnn.diagnostics.report import write_report
    from eisnn.diagnostics.study import run_study as train_all
    from eisnn.train.config import ConfigError

    if args.seeds < 1 or args.workers < 1:
        raise ConfigError("study: --seeds and --workers must be >= 1")
    out = Path(args.out)
    if not args.report_only:
        start = time.perf_counter()
        train_all(out, args.data_dir, args.datasets, args.seeds, args.workers)
        (out / "study_wall.json").write_text(json.dumps({"wall_s": time.perf_counter() - start}))
    wall_file = out / "study_wall.json"
    wall = json.loads(wall_file.read_text())["wall_s"] if wall_file.exists() else None
    command = (f"eisnn study --out {args.out} --data-dir {args.data_dir} --datasets {' '.join(args.datasets)} "
               f"--seeds {args.seeds} --workers {args.workers} --report {args.report}")
    report = write_report(out, Path(args.report), command, wall)
    print(f"wrote {report}")
    return 0
