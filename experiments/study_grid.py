"""The study's grid: the paper's ablations and baselines at two depths on offline data.

Run by ``experiments/study.py`` (which also writes ``docs/results.md``), on the installed package.

Grid: datasets (``digits`` upsampled to 16x16, ``digits_dvs`` event frames) x depths (an MLP with 2
hidden layers = 3 weight layers, and one with 10 = 11 weight layers) x variants (the full E-I
method, its four ablations of SPEC section 7, the BN-SNN and a plain SNN with Kaiming init) x
seeds. Every run is an ordinary training run (``eisnn.run``) with diagnostics on, in
``OUT/<dataset>/<depth>/<variant>/seed<k>``; a finished run leaves ``result.json`` and is not
trained again, so an interrupted study continues where it stopped.

A run *diverged* when a non-finite loss or gradient stopped it (its accuracy is then the last
evaluation before the stop); it *collapsed* when, on the test set at the end, the firing rate of
one of its spiking layers (mean over its units) is below 1%: in a network without shortcuts no
signal then reaches the readout.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eisnn.data import create_dataset, dataset_info
from eisnn.files import atomic_write
from eisnn.run import start_run
from eisnn.train.config import from_dict
from eisnn.train.trainer import NonFiniteError

COLLAPSE_RATE = 0.01
VARIANTS: dict[str, dict[str, Any]] = {
    "E-I (full method)": {"model": "ei_mlp"},
    "no E-I Init (standard init)": {"model": "ei_mlp", "init": "standard"},
    "fixed epsilon (no adaptive stab.)": {
        "model": "ei_mlp",
        "stabilization": "epsilon",
        "epsilon": 1e-8,
    },
    "no straight-through estimator": {"model": "ei_mlp", "ste": False},
    "no W_EI gradient scaling": {"model": "ei_mlp", "scale_w_ei_grad": False},
    "BN-SNN": {"model": "bn_mlp"},
    "plain SNN (Kaiming)": {"model": "plain_mlp"},
}
DEPTHS: dict[str, list[int]] = {
    "shallow (3 weight layers)": [128, 128],
    "deep (11 weight layers)": [128] * 10,
}
DATASETS: dict[str, dict[str, Any]] = {
    "digits": {"dataset": "digits", "image_size": 16, "epochs": 15},
    "digits_dvs": {"dataset": "digits_dvs", "epochs": 10},
}
BASE: dict[str, Any] = {
    "T": 4,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.01,
    "warmup_epochs": 1.0,
    "warmup_start_lr": 1e-4,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "augment": False,
    "nonfinite": "stop",
    "diagnostics": True,
    "histogram_epochs": [],
    "histograms": False,
    "plots": False,
    "progress": False,
    "device": "cpu",
    "cpu_threads": 1,
}


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    depth: str
    variant: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / self.dataset / slug(self.depth) / slug(self.variant) / f"seed{self.seed}"

    def config(self, out: Path, data_dir: str) -> dict[str, Any]:
        return {
            **BASE,
            **DATASETS[self.dataset],
            **VARIANTS[self.variant],
            "hidden": DEPTHS[self.depth],
            "seed": self.seed,
            "data_dir": data_dir,
            "out_dir": str(self.folder(out).parent),
            "name": self.folder(out).name,
        }


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.split(" (")[0]).strip("_").lower()


def plan(datasets: Sequence[str], seeds: int) -> list[RunSpec]:
    return [
        RunSpec(d, depth, v, s)
        for d in datasets
        for depth in DEPTHS
        for v in VARIANTS
        for s in range(seeds)
    ]


def run_one(spec: RunSpec, out: Path, data_dir: str) -> dict[str, Any]:
    """Train one run (single-threaded: ``cpu_threads: 1``) and write its ``result.json``; returns
    the result."""
    result_path = spec.folder(out) / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    start = time.perf_counter()
    trainer = start_run(from_dict(spec.config(out, data_dir)), echo=lambda _: None)
    diverged = None
    try:
        trainer.fit()
    except NonFiniteError as err:
        diverged = str(err).split(";")[0]
    finally:
        trainer.close()
    evals = [r for r in trainer.history if r.get("test_top1") is not None]
    last = evals[-1] if evals else {}
    rates = [v for k, v in last.items() if k.startswith("rate/")]
    mean_rate = statistics.fmean(rates) if rates else float("nan")
    result = {
        **spec.__dict__,
        "epochs_done": trainer.epoch,
        "test_top1": last.get("test_top1", float("nan")),
        "test_loss": last.get("test_loss", float("nan")),
        "mean_rate": mean_rate,
        "min_rate": min(rates) if rates else float("nan"),
        "diverged": diverged,
        "collapsed": bool(min(rates) < COLLAPSE_RATE) if rates else None,
        "wall_s": time.perf_counter() - start,
    }
    text = json.dumps(result, indent=1).encode()
    atomic_write(result_path, lambda f: f.write(text))
    return result


def _run_star(args: tuple[RunSpec, Path, str]) -> dict[str, Any]:
    return run_one(*args)


def run_study(
    out: Path, data_dir: str, datasets: Sequence[str], seeds: int, workers: int, echo=print
) -> list[dict[str, Any]]:
    """Train every run of the grid with ``workers`` single-threaded processes (1: in this
    process)."""
    specs = plan(datasets, seeds)
    # event recordings and frame caches are written once, before the workers start
    for name in datasets:
        if dataset_info(name).is_event:
            for train in (True, False):
                create_dataset(name, data_dir, train, T=BASE["T"], augment=False)
    jobs = [(s, out, data_dir) for s in specs]
    with contextlib.ExitStack() as stack:
        if workers == 1:  # in this process
            finished = map(_run_star, jobs)
        else:
            finished = stack.enter_context(mp.get_context("spawn").Pool(workers)).imap(
                _run_star, jobs
            )
        results = []
        for i, r in enumerate(finished, 1):
            status = "DIVERGED" if r["diverged"] else ("collapsed" if r["collapsed"] else "ok")
            echo(
                f"[{i}/{len(specs)}] {r['dataset']} | {r['depth']} | {r['variant']} | "
                f"seed {r['seed']}: top-1 {r['test_top1']:.2f}%  rate {r['mean_rate']:.3f}  "
                f"{status}  {r['wall_s']:.0f}s"
            )
            results.append(r)
    return results
