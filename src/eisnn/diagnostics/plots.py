"""PNG plots of the diagnostics: per-layer curves over training and histograms at chosen epochs.

Input is what the trainer writes: the history rows (``metrics.csv``) with ``diag/<layer>/<stat>``
and ``grad/<kind>`` columns, and ``diagnostics/histograms_epoch<N>.npz``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..train.plots import save_figure, series
from .training import DIAG_PREFIX, GRAD_PREFIX

PANELS: tuple[tuple[str, str], ...] = (
    ("e_rate", "E firing rate"),
    ("silent", "silent units (share)"),
    ("saturated", "saturated units (share)"),
    ("i_active", "I activity: share of I_I > 0"),
    ("balance", "E/I balance: mean sub / mean I_EE"),
    ("div_mean", "divisive current: mean"),
    ("div_zero", "div == 0 (stabilized share)"),
    ("dale_pinned", "Dale: share of weights pinned at 0"),
)


def layer_names(history: Sequence[dict[str, Any]]) -> list[str]:
    """Diagnosed layers in first-seen column order."""
    names: list[str] = []
    for row in history:
        for key in row:
            if key.startswith(DIAG_PREFIX):
                name = key[len(DIAG_PREFIX) :].rpartition("/")[0]
                if name not in names:
                    names.append(name)
    return names


def has_diagnostics(history: Sequence[dict[str, Any]]) -> bool:
    return any(k.startswith((DIAG_PREFIX, GRAD_PREFIX)) for row in history for k in row)


def plot_layer_curves(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """One panel per statistic, one line per layer (colour: depth), plus the gradient norms per
    kind."""
    layers = layer_names(history)
    colors = colormaps["viridis"](np.linspace(0, 0.9, max(len(layers), 1)))
    fig = Figure(figsize=(14, 6.4))
    fig.subplots_adjust(left=0.05, right=0.86, bottom=0.08, top=0.93, wspace=0.3, hspace=0.35)
    for i, (stat, title) in enumerate(PANELS):
        ax = fig.add_subplot(2, 5, i + 1)
        for layer, color in zip(layers, colors):
            x, y = series(history, f"{DIAG_PREFIX}{layer}/{stat}")
            if x:
                ax.plot(x, y, color=color, label=layer, marker="o", markersize=2)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if layers:
        handles = [Line2D([], [], color=color) for color in colors]
        fig.legend(
            handles,
            layers,
            loc="center right",
            fontsize=6,
            title="layer (input first)",
            title_fontsize=7,
        )
    ax = fig.add_subplot(2, 5, len(PANELS) + 1)
    kinds = [k for k in (history[0] if history else {}) if k.startswith(GRAD_PREFIX)]
    for key in kinds:
        x, y = series(history, key)
        if x:
            ax.plot(x, y, label=key[len(GRAD_PREFIX) :], marker="o", markersize=2)
    ax.set_yscale("log")
    ax.set_title("gradient norm per kind (mean/step)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if kinds:
        ax.legend(fontsize=6)
    for a in fig.axes:
        a.set_xlabel("epoch", fontsize=7)
    save_figure(fig, path)


def _pick(names: list[str], count: int) -> list[str]:
    """``count`` names spread from first to last."""
    if len(names) <= count:
        return names
    return [names[round(i * (len(names) - 1) / (count - 1))] for i in range(count)]


HIST_COLUMNS = (
    ("weight", "w_ee"),
    ("weight", "w_ei"),
    ("weight", "g_i"),
    ("current", "i_ee"),
    ("current", "sub"),
    ("current", "div"),
    ("current", "i_int"),
)


def plot_histograms(npz_path: str | Path, path: str | Path, max_layers: int = 3) -> None:
    """Histograms of weights and currents of a few layers (first to last) at one epoch."""
    data = np.load(npz_path)
    layers = list(
        dict.fromkeys(k.split("/", 1)[1].rpartition("/")[0] for k in data.files)
    )  # forward order
    layers = _pick(layers, max_layers)
    epoch = re.search(r"epoch(\d+)", Path(npz_path).name)
    fig = Figure(figsize=(15, 1.9 * max(len(layers), 1) + 0.6))
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.06, top=0.9, wspace=0.35, hspace=0.6)
    fig.suptitle(
        f"weights and currents{f' at epoch {epoch.group(1)}' if epoch else ''} (log counts)",
        fontsize=9,
    )
    for r, layer in enumerate(layers):
        for c, (group, name) in enumerate(HIST_COLUMNS):
            ax = fig.add_subplot(len(layers), len(HIST_COLUMNS), r * len(HIST_COLUMNS) + c + 1)
            key = f"{group}/{layer}/{name}"
            if key in data.files:
                values = data[key][np.isfinite(data[key])]
                if values.size:
                    counts, edges = np.histogram(values, bins=40)
                    ax.stairs(
                        counts,
                        edges,
                        fill=True,
                        color="tab:red" if group == "weight" else "tab:blue",
                    )
                    ax.set_yscale("log")
            ax.set_title(name, fontsize=8)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(layer, fontsize=7)
    save_figure(fig, path)


def plot_diagnostics(
    history: Sequence[dict[str, Any]], run_dir: str | Path, redraw: bool = True
) -> list[Path]:
    """The diagnostics plots of a run into ``run_dir/plots``; returns the files written.
    With ``redraw=False`` a histogram plot newer than its data is left as it is."""
    run_dir = Path(run_dir)
    written = []
    if has_diagnostics(history):
        written.append(run_dir / "plots" / "diagnostics.png")
        plot_layer_curves(history, written[-1])
    for npz in sorted((run_dir / "diagnostics").glob("histograms_epoch*.npz")):
        png = run_dir / "plots" / f"{npz.stem}.png"
        if redraw or not png.exists() or png.stat().st_mtime < npz.stat().st_mtime:
            plot_histograms(npz, png)
            written.append(png)
    return written
