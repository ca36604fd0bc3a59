"""Training runs that are cached on disk, shared by the experiments.

A run is an ordinary training run (``eisnn.run``) in its own folder; when it finishes it leaves
``result.json`` (its labels, final test accuracy and loss, firing rates, divergence and collapse,
time) and is never trained again, so an interrupted experiment continues where it stopped (a run
cut off before its result starts over). Runs
go to ``workers`` single-threaded processes (``cpu_threads: 1`` in each config).

A run *diverged* when a non-finite loss or gradient stopped it (its accuracy is then the last
evaluation before the stop); it *collapsed* when, on the test set at the end, the firing rate of
one of its spiking layers (mean over its units) is below :data:`COLLAPSE_RATE`: in a network
without shortcuts no signal then reaches the readout.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from eisnn.data import create_dataset, dataset_info
from eisnn.files import atomic_write
from eisnn.run import start_run
from eisnn.train.config import from_dict
from eisnn.train.trainer import NonFiniteError

COLLAPSE_RATE = 0.01
# every experiment's runs: on the CPU with one thread each, stopped by a non-finite loss, quiet
QUIET_RUN: dict[str, Any] = {
    "nonfinite": "stop",
    "histogram_epochs": [],
    "histograms": False,
    "plots": False,
    "progress": False,
    "device": "cpu",
    "cpu_threads": 1,
}
# the paper's optimizer (SGD, momentum 0.9, L2 5e-4) with 1 epoch of warm-up, no augmentation
SGD_RECIPE: dict[str, Any] = {
    "T": 4,
    "optimizer": "sgd",
    "lr": 0.01,
    "warmup_epochs": 1.0,
    "warmup_start_lr": 1e-4,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "augment": False,
}

Job = tuple[Path, dict[str, Any], dict[str, Any]]  # (run folder, config, labels kept in result)


def train_cached(folder: Path, config: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """The result of the run in ``folder``: read from its ``result.json``, or trained from
    ``config`` (its ``out_dir``/``name`` are set to ``folder``) and then written there."""
    result_path = folder / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    shutil.rmtree(folder, ignore_errors=True)  # a run interrupted before its result starts over
    start = time.perf_counter()
    cfg = from_dict({**config, "out_dir": str(folder.parent), "name": folder.name})
    trainer = start_run(cfg, echo=lambda _: None)
    diverged = None
    try:
        trainer.fit()
    except NonFiniteError as err:
        diverged = str(err).split(";")[0]
    finally:
        trainer.close()
    evals = [r for r in trainer.history if r.get("test_top1") is not None]
    last = evals[-1] if evals else {}
    rates = {k.removeprefix("rate/"): v for k, v in last.items() if k.startswith("rate/")}
    result = {
        **labels,
        "epochs_done": trainer.epoch,
        "test_top1": last.get("test_top1", float("nan")),
        "test_loss": last.get("test_loss", float("nan")),
        "mean_rate": statistics.fmean(rates.values()) if rates else float("nan"),
        "min_rate": min(rates.values()) if rates else float("nan"),
        "layer_rates": rates,
        "diverged": diverged,
        "collapsed": bool(min(rates.values()) < COLLAPSE_RATE) if rates else None,
        "wall_s": time.perf_counter() - start,
    }
    text = json.dumps(result, indent=1).encode()
    atomic_write(result_path, lambda f: f.write(text))
    return result


def _train_job(job: Job) -> dict[str, Any]:
    return train_cached(*job)


def prepare_event_data(datasets: Iterable[str], data_dir: str, T: int) -> None:
    """Write the event recordings and frame caches of ``datasets`` once, before workers start."""
    for name in datasets:
        if dataset_info(name).is_event:
            for train in (True, False):
                create_dataset(name, data_dir, train, T=T, augment=False)


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    describe: Callable[[dict[str, Any]], str],
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every job's result, trained by ``workers`` processes (1: in this process), in order; one
    line per finished run: ``describe(result)``, then accuracy, rate, status and time."""
    with contextlib.ExitStack() as stack:
        if workers == 1:
            finished = map(_train_job, jobs)
        else:
            pool = stack.enter_context(mp.get_context("spawn").Pool(workers))
            finished = pool.imap(_train_job, jobs)
        results = []
        for i, r in enumerate(finished, 1):
            status = "DIVERGED" if r["diverged"] else ("collapsed" if r["collapsed"] else "ok")
            echo(
                f"[{i}/{len(jobs)}] {describe(r)}: top-1 {r['test_top1']:.2f}%  "
                f"rate {r['mean_rate']:.3f}  {status}  {r['wall_s']:.0f}s"
            )
            results.append(r)
    return results
