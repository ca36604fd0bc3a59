"""The ``eisnn plot`` subcommand (registered in :mod:`eisnn.cli`)."""

from __future__ import annotations

import argparse
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
