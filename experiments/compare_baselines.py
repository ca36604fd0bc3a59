"""Train the paper's E-I SNN and every comparison system on the offline digits data; fill the
measured blocks of docs/baselines.md (its prose is written by hand).

Every system goes through the same trainer, data and schedule length (same epochs, batch 32,
cosine decay); each keeps its own optimizer family, learning rate and loss as in its recipe
(BASELINES.md). The networks are scaled down (``width``: at x1/4 every hidden E-I layer has at
least 4 I units, outside the failing region of docs/edge.md) and fed the digits upsampled to
16x16 (DANN's VGG-16 needs 32x32 for its five 2x2 max poolings). The E-I SNN runs twice: as in
its recipe, and with the gradient norm clipped at 10 (the remedy docs/edge.md measures). Reported
per system, over the seeds: test top-1 (mean ± std), the firing rate of its spiking layers on the
test set, and the time of one training step.

    PYTHONPATH=src python experiments/compare_baselines.py  # 3 seeds, fills docs/baselines.md

Finished runs are kept (``runs/compare_baselines/<system>-seed<k>-e<epochs>/measured.json``) and
reused, so an interrupted call resumes, and calls with ``--only`` on disjoint systems can run side
by side before a last call without ``--only`` writes the page.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from study_report import fill_blocks
from torch import nn

from eisnn.files import atomic_write
from eisnn.train.config import TrainConfig, from_dict
from eisnn.train.factory import build_loader
from eisnn.train.monitor import FiringRateMonitor
from eisnn.train.trainer import Trainer

COMMON: dict[str, Any] = {
    "dataset": "digits",
    "image_size": 16,
    "width": 0.25,
    "batch_size": 32,
    "epochs": 10,
    "warmup_epochs": 0,
    "dropout": 0.0,
    "progress": False,
    "histograms": False,
    "device": "cpu",
}


@dataclass(frozen=True)
class System:
    label: str
    paper_quote: str  # the paper's CIFAR-10 number for this system (not measured here)
    config: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # the system's key where two systems share a model

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def key(self) -> str:
        return self.name or self.model


EI_RECIPE: dict[str, Any] = {
    "model": "ei_resnet18",
    "T": 4,
    "optimizer": "sgd",
    "lr": 0.01,
    "warmup_epochs": 1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
}
SYSTEMS: tuple[System, ...] = (
    System("E-I SNN (the paper's method)", "92.05 (ResNet-18)", EI_RECIPE),
    System(
        "E-I SNN, gradient norm clipped at 10 (docs/edge.md)",
        "-",
        {**EI_RECIPE, "grad_clip": 10.0},
        name="ei_resnet18_clip10",
    ),
    System(
        "BN-SNN",
        "95.37 (ResNet-18)",
        {
            "model": "bn_resnet18",
            "T": 4,
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 1e-4,
        },
    ),
    System(
        "TEBN",
        "94.70 (ResNet-19)",
        {
            "model": "tebn_resnet19",
            "T": 4,
            "optimizer": "sgd",
            "lr": 0.02,
            "momentum": 0.9,
            "weight_decay": 5e-4,
        },
    ),
    System(
        "DANN (non-spiking E-I)",
        "88.54 (VGG-16)",
        {
            "model": "dann_vgg16",
            "T": 1,
            "image_size": 32,
            "augment": False,
            "optimizer": "sgd",
            "lr": 0.01,
            "momentum": 0.0,
            "weight_decay": 0.0,
        },
    ),
    System(
        "BackEISNN",
        "90.93 (5-layer CNN)",
        {
            "model": "backeisnn_cnn5",
            "T": 4,
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 0.0,
            "loss": "mse_rates",
        },
    ),
)


@dataclass
class Measured:
    top1: float
    rate: float | None
    step_ms: float
    train_s: float
    params: int


@torch.no_grad()
def spiking_rate(model: nn.Module, cfg: TrainConfig) -> float | None:
    """Mean over spiking layers of ``|spikes|`` per neuron per time step on the test split
    (None: no spikes)."""
    monitor = FiringRateMonitor(model)
    if not monitor.layers:
        return None
    model.eval()
    loader, _ = build_loader(cfg, False, torch.device(cfg.device))
    with monitor:
        for x, _ in loader:
            model(x)
    return statistics.fmean(monitor.rates().values())


def train_one(system: System, seed: int, epochs: int, run_dir: Path) -> Measured:
    cfg = from_dict(
        {
            **COMMON,
            "epochs": epochs,
            "eval_every": epochs,
            **system.config,
            "seed": seed,
            "out_dir": str(run_dir.parent),
            "name": run_dir.name,
        }
    )
    trainer = Trainer(cfg, run_dir, echo=lambda line: None)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    last = result.last_eval
    assert last is not None
    # epochs that did not evaluate and are not the first (E-I Init, warm caches): pure training time
    train_epochs = [
        r for r in result.history if r.get("test_top1") is None and r["epoch"] > 1
    ] or result.history
    step_ms = 1000 * statistics.median(r["epoch_s"] for r in train_epochs) / trainer.iters_per_epoch
    params = sum(p.numel() for p in trainer.model.parameters())
    return Measured(
        last["test_top1"], spiking_rate(trainer.model, cfg), step_ms, result.wall_s, params
    )


def measured(system: System, seed: int, epochs: int, runs: Path) -> Measured:
    """The run's measurement, read from ``measured.json`` when an earlier call finished it, else
    trained."""
    run_dir = runs / f"{system.key}-seed{seed}-e{epochs}"
    record = run_dir / "measured.json"
    if record.is_file():
        return Measured(**json.loads(record.read_text()))
    shutil.rmtree(run_dir, ignore_errors=True)  # an interrupted run starts over
    m = train_one(system, seed, epochs, run_dir)
    text = json.dumps(dataclasses.asdict(m)).encode()
    atomic_write(record, lambda f: f.write(text))
    return m


def mean_std(values: list[float]) -> str:
    return (
        f"{statistics.fmean(values):.2f} ± "
        f"{statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"
    )


def doc_blocks(
    results: dict[str, list[Measured]], seeds: list[int], epochs: int, command: str
) -> dict[str, str]:
    """The measured blocks of docs/baselines.md: command and time, setup, table, per-seed
    accuracies."""
    total_s = sum(m.train_s for runs in results.values() for m in runs)
    size = COMMON["image_size"]
    setup = [
        f"- digits ({size}x{size}, bilinear; DANN's VGG-16 at 32x32, the smallest its five 2x2 "
        f"poolings allow), {epochs} epochs, batch {COMMON['batch_size']}, cosine decay per "
        f"iteration, dropout 0, width x{COMMON['width']:g} for every network, seeds "
        f"{', '.join(map(str, seeds))}.",
        "- Each system keeps its own optimizer, learning rate, warm-up and loss:",
    ]
    for s in SYSTEMS:
        opts = {k: v for k, v in s.config.items() if k != "model"}
        setup.append(
            f"  - {s.label}: `{s.model}`, " + ", ".join(f"{k}={v}" for k, v in opts.items())
        )
    table = [
        "| system | model | T | parameters | test top-1 % (mean ± std) | firing rate "
        "| step time, ms (min-max) | paper, CIFAR-10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in SYSTEMS:
        runs = results[s.key]
        rates = [r.rate for r in runs if r.rate is not None]
        rate = f"{statistics.fmean(rates):.3f}" if rates else "— (ReLU, no spikes)"
        steps = [r.step_ms for r in runs]
        table.append(
            f"| {s.label} | `{s.model}` | {s.config.get('T', 4)} | {runs[0].params:,} | "
            f"{mean_std([r.top1 for r in runs])} | {rate} | "
            f"{statistics.fmean(steps):.0f} ({min(steps):.0f}-{max(steps):.0f}) | "
            f"{s.paper_quote} |"
        )
    per_seed = [
        f"- {s.label}: " + ", ".join(f"{r.top1:.2f}" for r in results[s.key]) for s in SYSTEMS
    ]
    return {
        "command": f"```\n{command}\n```\n\n{total_s / 60:.1f} min of training in all "
        f"({platform.processor() or platform.machine()}, torch threads: "
        f"{torch.get_num_threads()}, torch {torch.__version__}).",
        "setup": "\n".join(setup),
        "table": "\n".join(table),
        "seeds": "\n".join(per_seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=COMMON["epochs"])
    parser.add_argument(
        "--only", nargs="+", help="systems to run, by model name or key (default: all systems)"
    )
    parser.add_argument("--doc", type=Path, default=Path("docs/baselines.md"))
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/compare_baselines"),
        help=(
            "run directories; a finished run (measured.json) is reused, so an interrupted call "
            "resumes"
        ),
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help=(
            "torch CPU threads (1: on a shared 2-core machine, oversubscribed threads are far "
            "slower)"
        ),
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    systems = [s for s in SYSTEMS if args.only is None or s.key in args.only]
    command = "PYTHONPATH=src python experiments/compare_baselines.py"
    if args.seeds != [0, 1, 2] or args.epochs != COMMON["epochs"] or args.threads != 1:
        command += (
            f" --seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} "
            f"--threads {args.threads}"
        )
    results: dict[str, list[Measured]] = {}
    for system in systems:
        for seed in args.seeds:
            m = measured(system, seed, args.epochs, args.runs)
            results.setdefault(system.key, []).append(m)
            rate = "-" if m.rate is None else f"{m.rate:.3f}"
            print(
                f"{system.key:<16} seed {seed}: top-1 {m.top1:6.2f}%  rate {rate}  "
                f"step {m.step_ms:6.0f} ms  ({m.train_s:.0f} s)",
                flush=True,
            )
    if len(systems) == len(SYSTEMS):
        blocks = doc_blocks(results, args.seeds, args.epochs, command)
        text = fill_blocks(args.doc.read_text(), blocks, args.doc, "baselines")
        atomic_write(args.doc, lambda f: f.write(text.encode()))
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
