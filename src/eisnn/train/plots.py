"""PNG plots of a run from its metrics history (one dict per epoch, as in ``metrics.csv``).

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot global state)
and written atomically, so a viewer never sees half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eisnn.files import atomic_write

RATE_PREFIX = "rate/"


def save_figure(fig: Figure, path: str | Path) -> None:
    """Draw ``fig`` on the Agg canvas and write it to ``path`` as a PNG (90 dpi), atomically."""
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))


def series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(epochs, values)`` of column ``key`` over the history rows that hold a value for it."""
    pairs = [(row["epoch"], row[key]) for row in history if row.get(key) not in (None, "")]
    return [p[0] for p in pairs], [float(p[1]) for p in pairs]


def plot_learning_curves(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Loss, top-1 accuracy and learning rate against epoch (train and test)."""
    fig = Figure(figsize=(12, 3.6))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    panels = (
        ("loss", ("train_loss", "test_loss")),
        ("top-1 accuracy (%)", ("train_top1", "test_top1")),
        ("learning rate (end of epoch)", ("lr",)),
    )
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for key in keys:
            x, y = series(history, key)
            if x:
                ax.plot(x, y, marker="o", markersize=3, label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(ax.lines) > 1:
            ax.legend()
    save_figure(fig, path)


def plot_firing_rates(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Per-layer mean firing rate on the test set: the latest epoch (bars) and over epochs."""
    measured = [
        row
        for row in history
        if any(k.startswith(RATE_PREFIX) and v not in (None, "") for k, v in row.items())
    ]
    latest = measured[-1] if measured else {}
    layers = [k for k in latest if k.startswith(RATE_PREFIX)]
    names = [k[len(RATE_PREFIX) :] for k in layers]
    fig = Figure(figsize=(12, 4.5))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.25, top=0.92, wspace=0.2)
    bars, lines = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bars.bar(range(len(layers)), [float(latest[k] or 0.0) for k in layers], color="tab:blue")
    bars.set_xticks(range(len(layers)), names, rotation=60, ha="right", fontsize=7)
    bars.set_ylabel("firing rate")
    bars.set_title(f"epoch {latest['epoch']} (test set)" if latest else "no evaluation yet")
    for key, name in zip(layers, names):
        x, y = series(history, key)
        if x:
            lines.plot(x, y, label=name)
    lines.set_xlabel("epoch")
    lines.set_ylabel("firing rate")
    lines.set_title("per layer over training")
    lines.grid(alpha=0.3)
    if 0 < len(layers) <= 12:
        lines.legend(fontsize=7)
    save_figure(fig, path)


def plot_run(history: Sequence[dict[str, Any]], plot_dir: str | Path) -> None:
    """All plots of a run into ``plot_dir`` (refreshed every epoch)."""
    plot_dir = Path(plot_dir)
    plot_learning_curves(history, plot_dir / "learning_curves.png")
    plot_firing_rates(history, plot_dir / "firing_rates.png")
