"""The diagnostics of a training run (config ``diagnostics: true``), as the trainer uses them.

Per epoch, into the run's history (so ``metrics.csv``, TensorBoard and resumes carry them):

- ``grad/<kind>``: mean over the epoch's optimizer steps of the gradient L2 norm of each parameter
  kind (``w_ee``, ``w_ei``, ..., ``conv2d.weight``), as the optimizer receives it;
- ``diag/<layer>/<statistic>``: the activity and E-I statistics of :mod:`.stats`, recorded on the
  test-set evaluation every ``diagnostics_every`` epochs (and the last).

At the ``histogram_epochs`` (default: the first and the last) the values of the weights and of
the currents are written to ``diagnostics/histograms_epoch<N>.npz`` for the histogram plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from eisnn.files import atomic_write

from .recorder import GradientNorms, Recorder, weight_samples

DIAG_PREFIX = "diag/"
GRAD_PREFIX = "grad/"
HISTOGRAM_SAMPLES = 4096


def histogram_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / "diagnostics" / f"histograms_epoch{epoch}.npz"


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (compressed ``.npz``) atomically."""
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def flatten_summary(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{layer: {stat: v}}`` -> ``{"diag/<layer>/<stat>": v}``."""
    return {
        f"{DIAG_PREFIX}{layer}/{stat}": value
        for layer, row in summary.items()
        for stat, value in row.items()
    }


class TrainingDiagnostics:
    """Gradient norms every step, activity statistics on the evaluations that are due."""

    def __init__(
        self,
        model: nn.Module,
        run_dir: str | Path,
        epochs: int,
        every: int = 1,
        histogram_epochs: list[int] | None = None,
    ) -> None:
        self.model = model
        self.run_dir = Path(run_dir)
        self.epochs = epochs
        self.every = every
        self.histogram_epochs = set(
            histogram_epochs if histogram_epochs is not None else (1, epochs)
        )
        self.grads = GradientNorms(model)

    def after_backward(self) -> None:
        """Accumulate this step's gradient norms (call before the optimizer step)."""
        self.grads.accumulate()

    def gradient_row(self) -> dict[str, float]:
        """``grad/<kind>`` means of the epoch so far; starts the next epoch's accumulation."""
        row = {f"{GRAD_PREFIX}{kind}": value for kind, value in self.grads.means().items()}
        self.grads.reset()
        return row

    def recorder(self, epoch: int) -> Recorder | None:
        """A recorder for this (1-based) epoch's evaluation, or None when none is due."""
        if epoch % self.every != 0 and epoch != self.epochs and epoch not in self.histogram_epochs:
            return None
        return Recorder(self.model, HISTOGRAM_SAMPLES if epoch in self.histogram_epochs else 0)

    def activity_row(self, epoch: int, recorder: Recorder) -> dict[str, Any]:
        """The recorded statistics; at a histogram epoch also writes the histogram data."""
        if epoch in self.histogram_epochs:
            save_npz(
                histogram_path(self.run_dir, epoch),
                {
                    **{
                        f"weight/{k}": v
                        for k, v in weight_samples(self.model, HISTOGRAM_SAMPLES).items()
                    },
                    **{f"current/{k}": v for k, v in recorder.current_samples().items()},
                },
            )
        return flatten_summary(recorder.summary())
