"""Run logging: ``metrics.csv`` (one row per epoch) and TensorBoard event files (W&B:
:mod:`eisnn.train.wandb_log`).

The CSV is rewritten atomically from the whole history every epoch, so after a resume it
never holds rows of epochs that the checkpoint does not know about.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eisnn.files import atomic_write


def write_metrics_csv(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """All epochs as CSV rows; columns are the union of keys in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    text = buf.getvalue().encode()
    atomic_write(path, lambda f: f.write(text))


def read_metrics_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``metrics.csv`` with numbers parsed (empty cells become None)."""

    def parse(v: str) -> Any:
        if v == "":
            return None
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


class TensorBoardLog:
    """Scalars per epoch, histograms of per-neuron firing rates and of the weights.

    On resume, ``purge_step`` drops events of epochs after the checkpoint.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, row: dict[str, Any], epoch: int) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(metric_tag(key), value, epoch)

    def histograms(
        self, model: nn.Module, neuron_rates: dict[str, torch.Tensor], epoch: int
    ) -> None:
        for name, rates in neuron_rates.items():
            self.writer.add_histogram(f"firing_rate/{name}", rates.flatten(), epoch)
        for name, param in model.named_parameters():
            self.writer.add_histogram(
                f"weights/{name}", param.detach().float().cpu().flatten(), epoch
            )

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def metric_tag(key: str) -> str:
    """``train_loss`` -> ``train/loss``; ``rate/layers.1`` stays."""
    if "/" in key:
        return key
    head, _, tail = key.partition("_")
    return f"{head}/{tail}" if tail and head in ("train", "test") else key
