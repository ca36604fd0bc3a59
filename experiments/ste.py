"""Does the straight-through estimator change anything? Gradients and training with and without
it, at init and on trained weights; fills the ``ste:`` blocks of docs/results.md.

The STE (SPEC section 2) only acts on the entries of ``div`` that the adaptive stabilization
replaces: the zeros of a row (one time step of one sample) that has some positive entry. Its
backward differs from the ablation's only by where the gradient of such an entry goes, and that
gradient is ``-g_E (I_EE - sub) / div'**2`` times the incoming one. With ReLU I units and every
``W_IE`` weight positive, ``div = 0`` at a position means no input of its receptive field is
active, so ``I_EE = sub = 0`` there and the gradient is exactly zero: the STE can only matter once
the Dale projection has pinned some ``W_IE`` (or ``g_I``, ``W_EI``) entries at 0. (Spiking I units
divide by ``g_L + div`` and are never stabilized.) So the script measures, per setting, in
float64 so that rounding stays far below any effect:

- the share of ``div`` entries the stabilization replaces outside all-zero rows;
- the relative difference ``|g - g_no_ste| / |g|`` of the two gradients on the same weights and
  batches, per parameter kind: at E-I Init, and on the weights the with-STE run (seed 0) ends with;
- training with and without the STE (cached runs, ``cached_runs.py``), 3 seeds.

Run on the installed package::

    python experiments/ste.py --out runs/ste --data-dir runs/data --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from cached_runs import QUIET_RUN, SGD_RECIPE, Job, prepare_event_data, run_jobs
from study_report import fill_blocks, mean_std_text
from torch import nn

from eisnn.diagnostics.recorder import Recorder
from eisnn.diagnostics.stats import parameter_kind
from eisnn.files import atomic_write
from eisnn.init import ei_init
from eisnn.nn import EIConv2d
from eisnn.train.checkpoint import load_checkpoint
from eisnn.train.config import from_dict
from eisnn.train.factory import build_loader, build_model

SETTINGS: dict[str, dict[str, Any]] = {
    "MLP 2x128, digits 16x16": {
        "model": "ei_mlp",
        "hidden": [128, 128],
        "dataset": "digits",
        "image_size": 16,
    },
    "VGG-8 width 1/4, digits 32x32": {
        "model": "ei_vgg8",
        "width": 0.25,
        "dataset": "digits",
        "image_size": 32,
    },
    "VGG-8 width 1/4, digits_dvs (events)": {
        "model": "ei_vgg8",
        "width": 0.25,
        "dataset": "digits_dvs",
    },
    "ResNet-18 width 1/8, digits 8x8 (a failing cell of docs/edge.md)": {
        "model": "ei_resnet18",
        "width": 0.125,
        "dataset": "digits",
        "image_size": 8,
    },
}
TRAINED = tuple(label for label in SETTINGS if not label.startswith("MLP"))
TRAINING: dict[str, Any] = {
    **SGD_RECIPE,
    **QUIET_RUN,
    "epochs": 8,
    "batch_size": 32,
    "eval_every": 8,
    "diagnostics": False,
}
KINDS = ("w_ee", "w_ie", "w_ei", "g_i", "g_e", "b_e")
BATCHES = 4


def _gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    by_kind: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            by_kind.setdefault(parameter_kind(model, name), []).append(p.grad.flatten())
    return {k: torch.cat(v) for k, v in by_kind.items()}


def gradient_difference(
    setting: dict[str, Any], data_dir: str, state: dict[str, Any] | None = None
) -> dict[str, float]:
    """Share of ``div`` entries replaced outside all-zero rows, and the largest relative
    difference of the gradients with and without the STE per parameter kind, over
    :data:`BATCHES` training batches; on the E-I-initialized model (seed 0), or on ``state``."""
    cfg = from_dict({**TRAINING, **setting, "seed": 0, "data_dir": data_dir})
    torch.manual_seed(0)
    loader, _ = build_loader(cfg, True, torch.device("cpu"))
    batches = [b for _, b in zip(range(BATCHES), loader)]
    batches = [(x.double(), y) for x, y in batches]  # float64: rounding far below any effect
    with_ste = build_model(cfg).double()
    if state is None:
        ei_init(with_ste, batches[0][0])
    else:
        with_ste.load_state_dict(state)
    without = build_model(dataclasses.replace(cfg, ste=False)).double()
    without.load_state_dict(with_ste.state_dict())
    differences: dict[str, list[float]] = {}
    replaced: list[float] = []
    for x, y in batches:
        with Recorder(with_ste) as rec:
            a = _gradients(with_ste, x, y)
        b = _gradients(without, x, y)
        replaced += [
            r["div_zero"] - r["div_empty"] for r in rec.summary().values() if "div_zero" in r
        ]
        for kind in KINDS:
            if kind in a:
                diff = float((a[kind] - b[kind]).norm() / a[kind].norm().clamp_min(1e-30))
                differences.setdefault(kind, []).append(diff)
    return {"replaced": max(replaced), **{k: max(v) for k, v in differences.items()}}


def masked_inhibition_difference() -> dict[str, float]:
    """The setting where the STE acts: one ``EIConv2d`` (4 -> 16 channels, 3x3) whose I units
    do not see input channels 0-1 (their ``W_IE`` is 0 there, as after the Dale projection
    pinned them), fed spikes on those channels only in part of the image. There ``div = 0`` while
    ``I_EE > 0``; returns the same measures as :func:`gradient_difference` (float64)."""
    generator = torch.Generator().manual_seed(0)
    layer = EIConv2d(4, 16, 3, padding=1, dtype=torch.float64)
    x = (torch.rand(8, 4, 12, 12, generator=generator, dtype=torch.float64) < 0.3).double()
    ei_init(layer, x, generator)
    with torch.no_grad():
        layer.w_ie[:, :2] = 0
    x[:, 2:, :, :6] = 0  # left half: only the channels no I unit sees
    target = torch.rand(8, 16, 12, 12, generator=generator, dtype=torch.float64)
    grads = {}
    for ste in (True, False):
        twin = EIConv2d(4, 16, 3, padding=1, ste=ste, dtype=torch.float64)
        twin.load_state_dict(layer.state_dict())
        with Recorder(nn.Sequential(twin)) as rec:
            loss = (twin(x) - target).pow(2).mean()
        loss.backward()
        grads[ste] = {k: p.grad.flatten() for k, p in twin.named_parameters()}
        if ste:
            summary = rec.summary()["0"]
    kinds = {
        "w_ee": "w_ee",
        "w_ie": "w_ie",
        "w_ei": "w_ei",
        "g_i": "g_i",
        "g_e": "g_e",
        "b_e": "b_e",
    }
    return {
        "replaced": summary["div_zero"] - summary["div_empty"],
        **{
            kind: float((grads[True][n] - grads[False][n]).norm() / grads[True][n].norm())
            for kind, n in kinds.items()
        },
    }


def _fmt_diff(d: float) -> str:
    return "0 (identical)" if d == 0.0 else f"{d:.2g}"


def gradient_lines(out: Path, data_dir: str) -> list[str]:
    lines = [
        "| setting | weights | div replaced outside zero rows (largest layer) | "
        + " | ".join(f"`{k}`" for k in KINDS)
        + " |",
        "|---|---|---|" + "---|" * len(KINDS),
    ]
    for label, setting in SETTINGS.items():
        trained = run_folder(out, label, True, 0) / "checkpoints" / "last.pt"
        states = {"at E-I Init": None}
        if trained.is_file():
            states["trained (seed 0, with STE)"] = load_checkpoint(trained)["model"]
        for when, state in states.items():
            g = gradient_difference(setting, data_dir, state)
            diffs = " | ".join(_fmt_diff(g[k]) if k in g else "n/a" for k in KINDS)
            lines.append(f"| {label} | {when} | {g['replaced']:.3f} | {diffs} |")
    g = masked_inhibition_difference()
    diffs = " | ".join(_fmt_diff(g[k]) for k in KINDS)
    lines.append(
        f"| one EIConv2d whose I units do not see 2 of its 4 input channels, input on those "
        f"only in half the image | at E-I Init, then `W_IE` zeroed there | {g['replaced']:.3f} "
        f"| {diffs} |"
    )
    return lines


def run_folder(out: Path, label: str, ste: bool, seed: int) -> Path:
    return out / f"setting{list(SETTINGS).index(label)}" / f"ste_{ste}" / f"seed{seed}"


def jobs(out: Path, data_dir: str, seeds: int) -> list[Job]:
    return [
        (
            run_folder(out, label, ste, seed),
            {**TRAINING, **SETTINGS[label], "ste": ste, "seed": seed, "data_dir": data_dir},
            {"setting": label, "ste": ste, "seed": seed},
        )
        for label in TRAINED
        for ste in (True, False)
        for seed in range(seeds)
    ]


def training_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| setting | with the STE: top-1 % | without | per seed (with / without) |"]
    lines.append("|---|---|---|---|")
    for label in TRAINED:
        acc = {
            ste: [r["test_top1"] for r in results if (r["setting"], r["ste"]) == (label, ste)]
            for ste in (True, False)
        }
        pairs = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(acc[True], acc[False]))
        lines.append(
            f"| {label} | {mean_std_text(acc[True])} | {mean_std_text(acc[False])} | {pairs} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="experiments/ste.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/ste", help="folder of the runs (finished ones reused)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="parallel single-threaded runs")
    p.add_argument("--doc", default="docs/results.md", help="the document whose blocks are filled")
    args = p.parse_args(argv)
    doc = Path(args.doc)
    if not doc.is_file():
        p.error(f"no document {doc}: the report fills the marked blocks of an existing one")
    start = time.perf_counter()
    prepare_event_data(["digits_dvs"], args.data_dir, TRAINING["T"])
    torch.set_num_threads(1)
    results = run_jobs(
        jobs(Path(args.out), args.data_dir, args.seeds),
        args.workers,
        lambda r: f"{r['setting']} | STE {r['ste']} | seed {r['seed']}",
    )
    gradients = gradient_lines(Path(args.out), args.data_dir)
    wall_s = time.perf_counter() - start
    command = (
        f"python experiments/ste.py --out {args.out} --data-dir {args.data_dir} "
        f"--seeds {args.seeds} --workers {args.workers}"
    )
    blocks = {
        "command": f"```\n{command}\n```\n\nTotal time of the call: {wall_s / 60:.1f} min.",
        "gradients": "\n".join(gradients),
        "training": "\n".join(training_lines(results)),
    }
    text = fill_blocks(doc.read_text(), blocks, doc, "ste")
    atomic_write(doc, lambda f: f.write(text.encode()))
    print(f"total time: {wall_s / 60:.1f} min; wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
