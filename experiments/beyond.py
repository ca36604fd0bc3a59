"""Study of the options beyond the paper (issue 9): spiking vs ReLU I units, E:I ratios, Dale
policy, recurrent E-I vs plain recurrent SNN on sequences. Small models on the offline digits
tasks.

    PYTHONPATH=src python experiments/beyond.py --seeds 0 1 2 --epochs 5 --out docs/beyond

writes ``<out>/results.json``, ``<out>/tables.md`` and ``<out>/*.png``. Each run: AdamW (lr 3e-3,
weight decay 5e-4, cosine), batch 64, E-I Init on the first batch, Dale's law as configured;
reported: test accuracy after the last epoch and the mean firing rate of the hidden E units on
the test set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import eisnn
from eisnn.data import create_dataset
from eisnn.files import atomic_write
from eisnn.models import RecurrentUnit, SpikingUnit, create_model
from eisnn.train.monitor import FiringRateMonitor

STATIC = {
    "dataset": "digits",
    "model": "ei_mlp",
    "T": 4,
    "image_size": 8,
    "in_channels": 1,
    "hidden": (64, 64),
}
SEQ = {"dataset": "digits_seq", "T": 8, "image_size": 1, "in_channels": 8, "hidden": (64,)}
DVS = {"dataset": "digits_dvs", "T": 8, "image_size": 32, "in_channels": 2, "hidden": (64,)}

STUDIES = {
    "inhibitory": [("relu (paper)", {**STATIC}), ("lif", {**STATIC, "inhibitory": "lif"})],
    "ratio": [(f"{r}", {**STATIC, "ei_ratio": r}) for r in (1, 2, 4, 8, 16)],
    "dale": [("clamp (paper)", {**STATIC}), ("reparam", {**STATIC, "dale": "reparam"})],
    "sequence": [
        ("ei_rnn", {**SEQ, "model": "ei_rnn"}),
        ("ei_rnn, lif I units", {**SEQ, "model": "ei_rnn", "inhibitory": "lif"}),
        ("plain_rnn", {**SEQ, "model": "plain_rnn"}),
    ],
    "dvs": [("ei_rnn", {**DVS, "model": "ei_rnn"}), ("plain_rnn", {**DVS, "model": "plain_rnn"})],
}


def tensors(dataset: str, train: bool, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = create_dataset(
        dataset,
        "data",
        train=train,
        T=T if dataset != "digits" else None,
        augment=False,
        **({"image_size": 8} if dataset == "digits" else {}),
    )
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs).float(), torch.as_tensor(ys)


def run(spec: dict, seed: int, epochs: int, data: dict) -> dict:
    torch.manual_seed(seed)
    spec = dict(spec)
    dataset, T = spec.pop("dataset"), spec.pop("T")
    name, in_channels = spec.pop("model"), spec.pop("in_channels")
    x_tr, y_tr = data[dataset, True]
    x_te, y_te = data[dataset, False]
    model = create_model(name, 10, in_channels, T, **spec)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x_tr), generator=g)
    eisnn.ei_init(model, x_tr[order[:256]])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    eisnn.dale.attach(opt, model)
    steps = epochs * ((len(x_tr) + 63) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=g).split(64):
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    units = {n: m for n, m in model.named_modules() if isinstance(m, (SpikingUnit, RecurrentUnit))}
    model.eval()
    with torch.no_grad(), FiringRateMonitor(model, layers=units) as monitor:
        acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    rates = list(monitor.rates().values())
    dale_ok = all(bool((p >= 0).all()) for p in eisnn.dale.constrained_parameters(model))
    return {
        "acc": acc,
        "rate": float(np.mean(rates)),
        "final_loss": loss.item(),
        "dale_ok": dale_ok,
    }


def tables(results: dict) -> str:
    lines = []
    for study, rows in results.items():
        lines += [
            f"\n### {study}\n",
            "| setting | test accuracy % (mean ± sd) | hidden firing rate | seeds |",
            "|---|---|---|---|",
        ]
        for label, runs in rows.items():
            a = np.array([r["acc"] for r in runs]) * 100
            f = np.array([r["rate"] for r in runs])
            lines.append(
                f"| {label} | {a.mean():.1f} ± {a.std():.1f} | "
                f"{f.mean():.3f} ± {f.std():.3f} | {len(runs)} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = list(results)
    fig, axes = plt.subplots(1, len(studies), figsize=(3.2 * len(studies), 3), squeeze=False)
    for ax, study in zip(axes[0], studies):
        labels = list(results[study])
        accs = [[r["acc"] * 100 for r in results[study][k]] for k in labels]
        ax.bar(
            range(len(labels)),
            [np.mean(a) for a in accs],
            yerr=[np.std(a) for a in accs],
            color="tab:blue",
        )
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(study, fontsize=9)
        ax.set_ylabel("test accuracy %")
        ax.set_ylim(0, 100)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--studies", nargs="+", default=list(STUDIES))
    parser.add_argument("--out", default="docs/beyond")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results: dict = {}
    data: dict = {}
    for study in args.studies:
        results[study] = {}
        for label, spec in STUDIES[study]:
            for train in (True, False):
                if (spec["dataset"], train) not in data:
                    data[spec["dataset"], train] = tensors(spec["dataset"], train, spec["T"])
            results[study][label] = []
            for seed in args.seeds:
                t0 = time.time()
                r = run(spec, seed, args.epochs, data)
                r["seconds"] = time.time() - t0
                results[study][label].append(r)
                print(
                    f"{study} | {label} | seed {seed}: acc {r['acc']:.3f} "
                    f"rate {r['rate']:.3f} ({r['seconds']:.0f}s)",
                    flush=True,
                )
            record = {"args": vars(args), "results": results, "wall_s": time.time() - start}
            text = json.dumps(record, indent=1).encode()
            atomic_write(out / "results.json", lambda f, text=text: f.write(text))
    (out / "tables.md").write_text(tables(results) + f"\nwall time: {time.time() - start:.0f} s\n")
    plot(results, out)


if __name__ == "__main__":
    main()
