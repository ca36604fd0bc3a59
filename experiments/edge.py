"""Where E-I training breaks: E-I ResNet-18 and VGG-8 against their BN twins over width x input
size x learning rate on the offline digits; fills the marked blocks of docs/edge.md.

Every cell trains the E-I network and its BN twin with the same schedule (SGD, momentum 0.9,
1 epoch of linear warm-up, cosine decay, batch 32, T=4); each run is a cached training run
(``cached_runs.py``), so a rerun continues where it stopped. Runs on the installed package::

    python experiments/edge.py --out runs/edge --workers 2          # train, then fill the document
    python experiments/edge.py --out runs/edge --report-only        # refill from finished runs

Not every cell gets every seed: :data:`SEEDS` gives the number per cell (0: not run), chosen so
that the map fits a few hours of a 2-core CPU; the document says which.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from cached_runs import QUIET_RUN, SGD_RECIPE, Job, run_jobs
from matplotlib.figure import Figure
from study_report import fill_blocks, mean_std_text, shrink_png
from torch import nn

from eisnn.files import atomic_write
from eisnn.init import ei_layers
from eisnn.models import create_model
from eisnn.train.plots import save_figure

ARCHS = {"resnet18": "ResNet-18", "vgg8": "VGG-8"}
WIDTHS = (0.125, 0.25, 0.5, 1.0)
SIZES = {"resnet18": (8, 16, 32), "vgg8": (32, 64)}
LRS = (1e-3, 1e-2)
KINDS = ("ei", "bn")
# seeds per (architecture, input size, width); the cost of a cell grows with width^2 x size^2,
# and this plan is what fitted in one sitting of a 2-core CPU (the other cells are not run)
SEEDS: dict[tuple[str, int, float], int] = {
    **{("resnet18", 8, w): 3 for w in (0.125, 0.25, 0.5)},
    ("resnet18", 8, 1.0): 1,
    **{("resnet18", 16, w): 3 for w in (0.125, 0.25)},
    ("resnet18", 16, 0.5): 1,
    ("resnet18", 32, 0.125): 1,
    **{("vgg8", 32, w): 3 for w in (0.125, 0.25)},
    ("vgg8", 32, 0.5): 1,
    ("vgg8", 64, 0.125): 1,
    ("vgg8", 64, 0.25): 3,
}
TRAINING: dict[str, Any] = {
    **SGD_RECIPE,  # its lr is the cell's
    **QUIET_RUN,
    "dataset": "digits",
    "epochs": 8,
    "batch_size": 32,
    "eval_every": 8,
    "diagnostics": True,
}
CHANCE = 20.0  # top-1 % at or below which a run learned nothing (10 classes: chance is 10%)


@dataclass(frozen=True)
class Cell:
    arch: str
    size: int
    width: float
    lr: float

    def label(self) -> str:
        return f"{ARCHS[self.arch]} {self.size}x{self.size} width {_fraction(self.width)}"


# the two changes tried on the failing cells, both within the paper's maths (docs/edge.md)
REMEDIES: dict[str, dict[str, Any]] = {
    "ei_ratio=2": {"ei_ratio": 2.0},  # twice the I units: 4 in ResNet-18's stem at width 1/8
    "grad_clip=10": {"grad_clip": 10.0},  # about twice the typical global gradient norm
}
REMEDY_CELLS = (
    Cell("resnet18", 8, 0.125, 1e-3),
    Cell("resnet18", 8, 0.125, 1e-2),
    Cell("resnet18", 16, 0.125, 1e-2),
    Cell("resnet18", 8, 0.25, 1e-2),
    Cell("vgg8", 64, 0.25, 1e-2),
)
REMEDY_SEEDS = 3


@dataclass(frozen=True)
class EdgeRun:
    cell: Cell
    kind: str
    seed: int
    remedy: str | None = None  # a key of REMEDIES, applied to an E-I run

    @property
    def label(self) -> str:
        return self.kind if self.remedy is None else f"{self.kind}+{self.remedy}"

    def folder(self, out: Path) -> Path:
        c = self.cell
        return out / f"{c.arch}_s{c.size}_w{c.width:g}_lr{c.lr:g}" / self.label / f"seed{self.seed}"

    def config(self, data_dir: str) -> dict[str, Any]:
        c = self.cell
        return {
            **TRAINING,
            "model": f"{self.kind}_{c.arch}",
            "image_size": c.size,
            "width": c.width,
            "lr": c.lr,
            "seed": self.seed,
            "data_dir": data_dir,
            **(REMEDIES[self.remedy] if self.remedy else {}),
        }

    def labels(self) -> dict[str, Any]:
        return {**self.cell.__dict__, "kind": self.label, "seed": self.seed}


def _fraction(width: float) -> str:
    return "1" if width == 1 else f"1/{round(1 / width)}"


def cells() -> list[Cell]:
    return [
        Cell(a, s, w, lr)
        for a in ARCHS
        for s in SIZES[a]
        for w in WIDTHS
        for lr in LRS
        if SEEDS.get((a, s, w), 0)
    ]


def plan(part: str = "all") -> list[EdgeRun]:
    """Every run of ``part`` (``map``, ``remedies`` or ``all``): the map's cheapest cells first
    (so that a partial map covers the small networks), then the remedies."""
    runs = [
        EdgeRun(c, k, seed)
        for c in cells()
        for seed in range(SEEDS[(c.arch, c.size, c.width)])
        for k in KINDS
    ]
    remedies = [
        EdgeRun(c, "ei", seed, remedy)
        for c in REMEDY_CELLS
        for remedy in REMEDIES
        for seed in range(REMEDY_SEEDS)
    ]
    runs = sorted(runs, key=lambda r: (r.cell.width**2 * r.cell.size**2, r.seed))
    return {"map": runs, "remedies": remedies, "all": runs + remedies}[part]


@torch.no_grad()
def structure(arch: str, size: int, width: float) -> dict[str, int]:
    """The E-I network's smallest inhibitory population in a hidden layer (the readout's does
    not divide) and the smallest feature map one of its convolutions produces (read from the BN
    twin's convolutions on one blank image)."""
    ei = create_model(f"ei_{arch}", 10, 1, 4, image_size=size, width=width)
    n_i = min(layer.n_inhibitory for _, layer in ei_layers(ei) if not layer.readout)
    twin = create_model(f"bn_{arch}", 10, 1, 4, image_size=size, width=width)
    sides: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
        for m in twin.modules()
        if isinstance(m, nn.Conv2d)
    ]
    twin.eval()
    twin(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    return {"min_inhibitory": n_i, "min_map": min(sides)}


def load(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/seed*/result.json"))]


def summarize(results: list[dict[str, Any]]) -> dict[tuple[Cell, str], dict[str, Any]]:
    """Per (cell, kind): the seeds' accuracies and how many learned nothing, diverged or
    collapsed."""
    table: dict[tuple[Cell, str], dict[str, Any]] = {}
    for r in results:
        key = (Cell(r["arch"], r["size"], r["width"], r["lr"]), r["kind"])
        table.setdefault(key, {"acc": [], "chance": 0, "diverged": 0, "collapsed": 0})
        entry = table[key]
        acc = r["test_top1"]
        entry["acc"].append(acc)
        entry["chance"] += not acc > CHANCE  # NaN (no evaluation) counts as chance
        entry["diverged"] += r["diverged"] is not None
        entry["collapsed"] += bool(r["collapsed"])
    return table


def _acc(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "not run"
    seeds = ", ".join(f"{a:.1f}" for a in entry["acc"])
    finite = [a for a in entry["acc"] if not math.isnan(a)]
    return seeds if len(finite) < 2 else f"{mean_std_text(finite)} ({seeds})"


def _failures(entry: dict[str, Any] | None, none: str = "-") -> str:
    """``k/n chance, diverged, collapsed`` as far as any; ``none`` when the seeds had none."""
    if entry is None:
        return ""
    n = len(entry["acc"])
    parts = [f"{entry[k]}/{n} {k}" for k in ("chance", "diverged", "collapsed") if entry[k]]
    return ", ".join(parts) or none


def table_lines(table: dict[tuple[Cell, str], dict[str, Any]]) -> list[str]:
    lines = [
        "| network, input, width | lr | I units (fewest) | smallest map | E-I top-1 % "
        "| E-I failures | BN top-1 % | BN failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells():
        ei, bn = table.get((c, "ei")), table.get((c, "bn"))
        if ei is None and bn is None:
            continue
        shape = structure(c.arch, c.size, c.width)
        lines.append(
            f"| {c.label()} | {c.lr:g} | {shape['min_inhibitory']} | "
            f"{shape['min_map']}x{shape['min_map']} | {_acc(ei)} | {_failures(ei)} | "
            f"{_acc(bn)} | {_failures(bn)} |"
        )
    return lines


def remedy_lines(table: dict[tuple[Cell, str], dict[str, Any]]) -> list[str]:
    """Per failing cell: the E-I network as in the map, and with each remedy."""
    lines = [
        "| network, input, width | lr | E-I top-1 % (as in the map) | "
        + " | ".join(f"with `{r.replace('=', ': ')}`" for r in REMEDIES)
        + " |",
        "|---|---|---|" + "---|" * len(REMEDIES),
    ]
    for c in REMEDY_CELLS:
        remedied = [table.get((c, f"ei+{r}")) for r in REMEDIES]
        if all(e is None for e in remedied):
            continue
        cols = [f"{_acc(e)} {_failures(e, none='')}".rstrip() for e in remedied]
        lines.append(
            f"| {c.label()} | {c.lr:g} | {_acc(table.get((c, 'ei')))} | " + " | ".join(cols) + " |"
        )
    return lines


def plot_map(table: dict[tuple[Cell, str], dict[str, Any]], path: Path) -> None:
    """One panel per (architecture, learning rate): per cell, E-I and BN side by side, bar = mean
    over seeds, dots = seeds; red marks an E-I seed at chance."""
    fig = Figure(figsize=(13, 7))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.15, hspace=0.6)
    for row, arch in enumerate(ARCHS):
        for col, lr in enumerate(LRS):
            ax = fig.add_subplot(2, 2, row * 2 + col + 1)
            arch_cells = [c for c in cells() if c.arch == arch and c.lr == lr]
            for x, c in enumerate(arch_cells):
                for dx, kind, color in ((-0.2, "ei", "tab:green"), (0.2, "bn", "tab:blue")):
                    entry = table.get((c, kind))
                    if entry is None:
                        continue
                    accs = [0.0 if math.isnan(a) else a for a in entry["acc"]]
                    ax.bar(x + dx, statistics.fmean(accs), width=0.38, color=color, alpha=0.55)
                    dots = ["tab:red" if a <= CHANCE and kind == "ei" else "black" for a in accs]
                    ax.scatter([x + dx] * len(accs), accs, s=9, c=dots, zorder=3)
            ax.axhline(10, color="gray", linestyle=":", linewidth=0.8)
            ax.set_xticks(range(len(arch_cells)))
            ax.set_xticklabels(
                [f"{c.size}px\n{_fraction(c.width)}" for c in arch_cells], fontsize=7
            )
            ax.set_ylim(0, 100)
            ax.set_title(f"{ARCHS[arch]}, lr {lr:g}: E-I (green) vs BN (blue)", fontsize=9)
            ax.set_ylabel("test top-1 %", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        "digits, 8 epochs: accuracy per cell (input size, width); dots are seeds, "
        "red: an E-I seed at chance",
        fontsize=10,
    )
    save_figure(fig, path)


def blocks(out: Path, figures: Path, command: str, wall_s: float | None) -> dict[str, str]:
    results = load(out)
    table = summarize(results)
    png = figures / "edge_map.png"
    plot_map(table, png)
    shrink_png(png)
    train_s = sum(r["wall_s"] for r in results)
    wall = f", wall time of the last call {wall_s / 60:.1f} min" if wall_s is not None else ""
    return {
        "command": f"```\n{command}\n```",
        "runs": f"{len(results)} runs, summed training time {train_s / 60:.1f} min "
        f"(single-threaded runs){wall}.",
        "table": "\n".join(table_lines(table)),
        "remedies": "\n".join(remedy_lines(table)),
        "figure": f"![the edge map](figures/{png.name})",
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="experiments/edge.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/edge", help="folder of the runs (finished ones reused)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--workers", type=int, default=2, help="parallel single-threaded runs")
    p.add_argument("--doc", default="docs/edge.md", help="the document whose blocks are filled")
    p.add_argument("--report-only", action="store_true", help="only refill the document")
    p.add_argument(
        "--part",
        default="all",
        choices=["all", "map", "remedies"],
        help="train only the map or only the remedies (two calls can run side by side)",
    )
    args = p.parse_args(argv)
    out, doc = Path(args.out), Path(args.doc)
    if not doc.is_file():
        p.error(f"no document {doc}: the report fills the marked blocks of an existing one")
    wall_file = out / "edge_wall.json"
    if not args.report_only:
        start = time.perf_counter()
        runs = plan(args.part)
        jobs: list[Job] = [(r.folder(out), r.config(args.data_dir), r.labels()) for r in runs]
        run_jobs(
            jobs,
            args.workers,
            lambda r: (
                f"{ARCHS[r['arch']]} {r['size']}px w{r['width']:g} lr {r['lr']:g} "
                f"{r['kind']} seed {r['seed']}"
            ),
        )
        wall_s = time.perf_counter() - start
        atomic_write(wall_file, lambda f: f.write(json.dumps({"wall_s": wall_s}).encode()))
        print(f"total time of this call: {wall_s / 60:.1f} min")
    wall = json.loads(wall_file.read_text())["wall_s"] if wall_file.exists() else None
    command = f"python experiments/edge.py --out {args.out} --workers {args.workers}"
    filled = fill_blocks(
        doc.read_text(), blocks(out, doc.parent / "figures", command, wall), doc, "edge"
    )
    atomic_write(doc, lambda f: f.write(filled.encode()))
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
