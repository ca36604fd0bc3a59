"""The study's report: the measured parts of ``docs/results.md`` (tables, the paper's claims
checked, plots), from the runs' ``result.json`` and ``metrics.csv``.

The document is written by hand; this module only fills its marked blocks, each between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` (:func:`measured_blocks`), and leaves
everything outside them as it is.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cached_runs import COLLAPSE_RATE
from matplotlib.figure import Figure
from study_grid import VARIANTS, Network, RunSpec, Study, slug

from eisnn.diagnostics.plots import plot_layer_curves
from eisnn.files import atomic_write
from eisnn.train.metrics import read_metrics_csv
from eisnn.train.plots import save_figure

FULL = "E-I (full method)"


class ReportError(ValueError):
    """The report cannot be written: no document, no finished runs, or a block marker wrong."""


# the paper's ablation claims (SPEC section 7): variant -> (claim, failure mode that reproduces it)
CLAIMS: dict[str, tuple[str, str]] = {
    "no E-I Init (standard init)": ("firing rates collapse, training fails", "collapse"),
    "fixed epsilon (no adaptive stab.)": ("numerical explosion", "explode"),
    "no straight-through estimator": ("wrong gradient direction (worse training)", "accuracy"),
    "no W_EI gradient scaling": (
        "inhibitory path gets excessive updates (worse training)",
        "accuracy",
    ),
}
DIAGNOSED = (FULL, "no W_EI gradient scaling", "fixed epsilon (no adaptive stab.)")
ACCURACY_MARGIN = 2.0  # points of top-1 below the full method that count as worse
EXPLODED_GRAD = (
    1e6  # an epoch-mean gradient norm above this (full method: below ~10) counts as an explosion
)


def load_results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/*/seed*/result.json"))]


def _spec(r: dict[str, Any]) -> RunSpec:
    return RunSpec(r["study"], r["dataset"], r["network"], r["variant"], r["seed"])


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def mean_std_text(values: Sequence[float]) -> str:
    """``mean ± sample std`` of the finite ``values`` (one decimal); fewer than two: the value
    itself, or ``n/a``."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2:
        return ", ".join(f"{v:.1f}" for v in finite) or "n/a"
    mean, std = _mean_std(finite)
    return f"{mean:.1f} ± {std:.1f}"


def _history(out: Path, r: dict[str, Any]) -> list[dict[str, Any]]:
    path = _spec(r).folder(out) / "metrics.csv"
    return read_metrics_csv(path) if path.exists() else []


def summarize(
    out: Path, results: list[dict[str, Any]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (dataset, network, variant): accuracy mean/std/min/max, divergence and collapse counts,
    rates."""
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for key in sorted({(r["dataset"], r["network"], r["variant"]) for r in results}):
        runs = [r for r in results if (r["dataset"], r["network"], r["variant"]) == key]
        acc = [r["test_top1"] for r in runs]
        hists = [_history(out, r) for r in runs]
        div_zero = [
            v
            for h in hists
            for row in h
            for k, v in row.items()
            if k.endswith("/div_zero") and v is not None and math.isfinite(v)
        ]
        # zeros of div outside rows without any positive entry: the only ones the STE can act on
        div_partial = [
            row[k] - row[k.replace("div_zero", "div_empty")]
            for h in hists
            for row in h
            for k in row
            if k.endswith("/div_zero") and row[k] is not None and math.isfinite(row[k])
        ]
        grad_w_ei = [
            statistics.fmean(row["grad/w_ei"] for row in h if row.get("grad/w_ei") is not None)
            for h in hists
            if any(row.get("grad/w_ei") is not None for row in h)
        ]
        max_grad = [
            max(
                (v for row in h for k, v in row.items() if k.startswith("grad/") and v is not None),
                default=float("nan"),
            )
            for h in hists
        ]
        exploded = sum(
            r["diverged"] is not None or (g > EXPLODED_GRAD) for r, g in zip(runs, max_grad)
        )
        mean, std = _mean_std(acc)
        cells[key] = {
            "n": len(runs),
            "acc": mean,
            "std": std,
            "min": -_finite_max([-a for a in acc]),
            "max": _finite_max(acc),
            "diverged": sum(r["diverged"] is not None for r in runs),
            "exploded": exploded,
            "max_grad": _finite_max(max_grad),
            "collapsed": sum(r["min_rate"] < COLLAPSE_RATE for r in runs),  # see cached_runs
            "rate": _mean_std([r["mean_rate"] for r in runs])[0],
            "min_rate": _mean_std([r["min_rate"] for r in runs])[0],
            "grad_w_ei": statistics.fmean(grad_w_ei) if grad_w_ei else float("nan"),
            "div_zero_max": max(div_zero) if div_zero else float("nan"),
            "div_partial_max": max(div_partial) if div_partial else float("nan"),
            "wall_s": sum(r["wall_s"] for r in runs),
        }
    return cells


def _finite_max(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else float("nan")


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def results_table(study: Study, cells: dict, dataset: str) -> list[str]:
    lines = [
        "| network | variant | top-1 % (mean ± std) | min - max | diverged | exploded | collapsed "
        "| mean rate | lowest layer rate | largest gradient norm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for network in study.networks:
        for variant in VARIANTS:
            c = cells.get((dataset, network, variant))
            if c is None:
                continue
            lines.append(
                f"| {network} | {variant} | {_fmt(c['acc'])} ± {_fmt(c['std'])} | "
                f"{_fmt(c['min'])} - {_fmt(c['max'])} | {c['diverged']}/{c['n']} | "
                f"{c['exploded']}/{c['n']} | "
                f"{c['collapsed']}/{c['n']} | {_fmt(c['rate'], 3)} | {_fmt(c['min_rate'], 3)} | "
                f"{c['max_grad']:.2g} |"
            )
    return lines


def verdict(mode: str, full: dict[str, Any], abl: dict[str, Any]) -> str:
    """Whether an ablation cell shows the paper's failure mode (majority of seeds / accuracy
    margin)."""
    n = abl["n"]
    worse = abl["acc"] < full["acc"] - max(ACCURACY_MARGIN, full["std"] + abl["std"])
    observed = {
        "collapse": abl["collapsed"] * 2 > n,
        "explode": abl["exploded"] * 2 > n,
        "accuracy": worse,
    }
    drop = f"top-1 {_fmt(abl['acc'])} vs {_fmt(full['acc'])}"
    if observed[mode]:
        return (
            f"**reproduced** ({drop}; diverged {abl['diverged']}/{n}, "
            f"exploded {abl['exploded']}/{n}, collapsed {abl['collapsed']}/{n})"
        )
    if worse or observed["collapse"] or observed["explode"]:
        return (
            f"partly: worse, but not by the claimed mechanism ({drop}; "
            f"diverged {abl['diverged']}/{n}, exploded {abl['exploded']}/{n}, "
            f"collapsed {abl['collapsed']}/{n})"
        )
    return (
        f"**not reproduced** ({drop}; diverged {abl['diverged']}/{n}, "
        f"exploded {abl['exploded']}/{n}, collapsed {abl['collapsed']}/{n})"
    )


def claims_table(study: Study, cells: dict, datasets: Sequence[str]) -> list[str]:
    lines = ["| ablation | paper's claim | data, network | measured here |", "|---|---|---|---|"]
    for variant, (claim, mode) in CLAIMS.items():
        for dataset in datasets:
            for network in study.networks:
                full = cells.get((dataset, network, FULL))
                abl = cells.get((dataset, network, variant))
                if full is None or abl is None:
                    continue
                extra = ""
                if mode == "explode" or variant == "no straight-through estimator":
                    extra = (
                        f"; full method: largest share of div == 0 in any layer and epoch "
                        f"{full['div_zero_max']:.2g}, "
                        f"outside all-zero rows {full['div_partial_max']:.2g}"
                    )
                if variant == "no W_EI gradient scaling":
                    extra = (
                        f"; mean W_EI gradient norm {full['grad_w_ei']:.2g} -> "
                        f"{abl['grad_w_ei']:.2g}"
                    )
                lines.append(
                    f"| {variant} | {claim} | {dataset}, {network.split(' (')[0]} | "
                    f"{verdict(mode, full, abl)}{extra} |"
                )
    return lines


def depth_lines(study: Study, cells: dict, datasets: Sequence[str]) -> list[str]:
    """The normalization-free claim: each E-I network against its BN and plain twins."""
    lines = []
    for dataset in datasets:
        for network in study.networks:
            lines += _twins_line(cells, dataset, network)
    return lines


def _twins_line(cells: dict, dataset: str, network: str) -> list[str]:
    get = lambda v: cells.get((dataset, network, v))
    full, bn, plain = get(FULL), get("BN-SNN"), get("plain SNN (Kaiming)")
    if full is None or bn is None or plain is None:
        return []
    return [
        f"- {dataset}, {network}: E-I {_fmt(full['acc'])} ± {_fmt(full['std'])}%, BN-SNN "
        f"{_fmt(bn['acc'])} ± {_fmt(bn['std'])}%, "
        f"plain SNN {_fmt(plain['acc'])} ± {_fmt(plain['std'])}% "
        f"(plain: collapsed {plain['collapsed']}/{plain['n']}, "
        f"diverged {plain['diverged']}/{plain['n']})."
    ]


def plot_training(
    study: Study, out: Path, results: list[dict[str, Any]], dataset: str, path: Path
) -> None:
    """Train loss and mean firing rate over epochs, mean over seeds, one line per variant; a row
    per network."""
    fig = Figure(figsize=(11, 6.5))
    fig.subplots_adjust(left=0.07, right=0.72, bottom=0.08, top=0.89, wspace=0.25, hspace=0.35)
    colors = dict(
        zip(
            VARIANTS,
            ["black", "tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:blue", "tab:gray"],
        )
    )
    networks = list(study.networks)
    for row, network in enumerate(networks):
        for col, (key, label) in enumerate(
            (("train_loss", "train loss"), ("train_rate", "mean firing rate (train)"))
        ):
            ax = fig.add_subplot(len(networks), 2, row * 2 + col + 1)
            for variant in VARIANTS:
                hists = [
                    _history(out, r)
                    for r in results
                    if (r["dataset"], r["network"], r["variant"]) == (dataset, network, variant)
                ]
                epochs = sorted({h_row["epoch"] for h in hists for h_row in h})
                if not epochs:
                    continue
                ys = [
                    statistics.fmean(
                        v
                        for h in hists
                        for h_row in h
                        if h_row["epoch"] == e
                        and (v := h_row.get(key)) is not None
                        and math.isfinite(v)
                    )
                    for e in epochs
                ]
                ax.plot(
                    epochs,
                    ys,
                    color=colors[variant],
                    label=variant,
                    marker="o",
                    markersize=2,
                    linestyle="--" if variant == "no straight-through estimator" else "-",
                )
            if key == "train_rate":
                ax.axhline(COLLAPSE_RATE, color="tab:red", linestyle=":", linewidth=0.8)
                ax.set_yscale("symlog", linthresh=COLLAPSE_RATE)
                ax.set_ylim(bottom=0)
            ax.set_title(f"{network}: {label}", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle(
        f"{dataset}: mean over seeds (dashed: no STE, drawn over the full method where identical)",
        fontsize=10,
    )
    save_figure(fig, path)


def shrink_png(path: Path, colors: int = 64) -> None:
    """Re-encode a plot with a ``colors``-entry palette (a few times smaller; plots use few
    colours)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=colors)
    atomic_write(path, lambda f: small.save(f, format="PNG", optimize=True))


def grid_lines(study: Study, datasets: Sequence[str]) -> list[str]:
    """The grid as it ran: data, networks, variants, training settings and the thresholds."""

    def keys(settings: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in settings.items())

    def network_keys(network: Network) -> str:
        per = "; ".join(f"on {d}: {keys(o)}" for d, o in network.per_dataset.items())
        return f"`{network.arch}`, {keys(network.options)}" + (f" ({per})" if per else "")

    data = {d: {k: v for k, v in study.datasets[d].items() if k != "dataset"} for d in datasets}
    training = {
        k: v
        for k, v in study.base.items()
        if k
        in (
            "T",
            "batch_size",
            "optimizer",
            "lr",
            "warmup_epochs",
            "warmup_start_lr",
            "momentum",
            "weight_decay",
            "augment",
        )
    }
    return [
        "- Data: " + "; ".join(f"`{d}` ({keys(settings)})" for d, settings in data.items()) + ".",
        "- Networks: " + "; ".join(f"{n}: {network_keys(w)}" for n, w in study.networks.items()),
        "- Variants (their config keys):",
        *(f"  - {v}: `{keys(c)}`" for v, c in VARIANTS.items()),
        f"- Training (all variants alike): {keys(training)}.",
        f"- Thresholds: collapsed below a mean rate of {COLLAPSE_RATE:.0%}; exploded above an "
        f"epoch-mean gradient norm of {EXPLODED_GRAD:.0e}; accuracy margin {ACCURACY_MARGIN:g} "
        "points.",
    ]


def figure_link(name: str, png: Path) -> list[str]:
    """A markdown image of ``png`` (which lies in the report's ``figures/``), then a blank line."""
    return [f"![{name}](figures/{png.name})", ""]


def fill_blocks(text: str, blocks: dict[str, str], source: Path, prefix: str = "results") -> str:
    """``text`` with the content of every block marked ``<!-- PREFIX:NAME -->`` replaced by
    ``blocks[NAME]``; a block of ``blocks`` missing from ``text``, or a marked block with that
    prefix it does not know, raises :class:`ReportError`."""
    marked = re.findall(rf"<!-- {prefix}:(\w+) -->", text)
    unknown = sorted(set(marked) - set(blocks))
    missing = [name for name in blocks if name not in marked]
    if unknown or missing:
        raise ReportError(
            f"{source}: blocks missing: {', '.join(missing) or 'none'}; "
            f"unknown blocks: {', '.join(unknown) or 'none'}"
        )
    for name, content in blocks.items():
        pattern = re.compile(
            rf"(<!-- {prefix}:{name} -->\n).*?(<!-- /{prefix}:{name} -->)", re.DOTALL
        )
        if pattern.search(text) is None:
            raise ReportError(f"{source}: block {name} has no closing <!-- /{prefix}:{name} -->")
        text = pattern.sub(
            lambda m, content=content: m.group(1) + content.rstrip("\n") + "\n" + m.group(2),
            text,
        )
    return text


def training_figures(
    study: Study,
    out: Path,
    results: list[dict[str, Any]],
    datasets: Sequence[str],
    figures: Path,
) -> list[str]:
    """Writes the training curves of each dataset into ``figures``; returns their links."""
    lines: list[str] = []
    for dataset in datasets:
        png = figures / f"{study.figures}_{dataset}.png"
        plot_training(study, out, results, dataset, png)
        shrink_png(png)
        lines += figure_link(dataset, png)
    return lines


def diagnostics_figures(study: Study, out: Path, figures: Path) -> list[str]:
    """Writes the per-layer diagnostics of the digits runs (seed 0) of :data:`DIAGNOSED` on the
    study's diagnosed networks into ``figures``; returns their captions and links."""
    lines: list[str] = []
    for network in study.diagnosed:
        for variant in DIAGNOSED:
            spec = RunSpec(study.key, "digits", network, variant, 0)
            history = _history(out, spec.__dict__)
            if history:
                png = figures / f"diagnostics_digits_{slug(network)}_{slug(variant)}.png"
                plot_layer_curves(history, png)
                shrink_png(png)
                lines += [f"{network}, {variant}:", "", *figure_link(variant, png)]
    return lines


def measured_blocks(
    study: Study, out: Path, figures: Path, command: str, wall_s: float | None
) -> dict[str, str]:
    """The content of every block of the document (by name) from the runs under ``out``; writes
    the figures into ``figures``."""
    results = load_results(out)
    if not results:
        raise ReportError(f"no finished study runs under {out} (expected */*/*/seed*/result.json)")
    cells = summarize(out, results)
    datasets = [d for d in study.datasets if any(r["dataset"] == d for r in results)]
    seeds = sorted({r["seed"] for r in results})
    train_s = sum(r["wall_s"] for r in results)
    wall = f", wall time of the study {wall_s / 60:.1f} min" if wall_s is not None else ""
    runs = (
        f"{len(results)} finished runs of a grid of {len(datasets)} datasets x "
        f"{len(study.networks)} networks x {len(VARIANTS)} variants x {len(seeds)} seeds "
        f"({len(datasets) * len(study.networks) * len(VARIANTS) * len(seeds)} runs), summed "
        "training time "
        f"{train_s / 60:.1f} min (single-threaded runs){wall}."
    )
    accuracy: list[str] = []
    for dataset in datasets:
        accuracy += [f"### {dataset}", "", *results_table(study, cells, dataset), ""]
    full_grad = _finite_max([c["max_grad"] for k, c in cells.items() if k[2] == FULL])
    accuracy.append(
        f"Largest epoch-mean gradient norm of the full method (any run, parameter kind "
        f"and epoch): {full_grad:.2g}."
    )
    return {
        "command": f"```\n{command}\n```",
        "runs": runs,
        "grid": "\n".join(grid_lines(study, datasets)),
        "accuracy": "\n".join(accuracy),
        "claims": "\n".join(claims_table(study, cells, datasets)),
        "depth": "\n".join(depth_lines(study, cells, datasets)),
        "curves": "\n".join(training_figures(study, out, results, datasets, figures)),
        "diagnostics": "\n".join(diagnostics_figures(study, out, figures)),
    }


def write_report(
    study: Study, out: Path, report: Path, command: str, wall_s: float | None = None
) -> Path:
    """Fill the study's measured blocks of the document ``report`` (which must exist: its prose
    is written by hand) from the runs under ``out``; figures go to ``report.parent /
    "figures"``."""
    if not report.is_file():
        raise ReportError(
            f"no document {report}: the report fills the marked blocks of an "
            "existing one (docs/results.md)"
        )
    blocks = measured_blocks(study, out, report.parent / "figures", command, wall_s)
    text = fill_blocks(report.read_text(), blocks, report, study.name)
    atomic_write(report, lambda f: f.write(text.encode()))
    return report
