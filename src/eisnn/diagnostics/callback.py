"""``diagnostics: true`` as a trainer callback: :class:`TrainingDiagnostics` wired into the loop.

The diagnostics run on the main process only: its share of the test set, and the gradients
after the all-reduce (the same on every process).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from eisnn.train.callbacks import Callback

from .plots import plot_diagnostics
from .training import TrainingDiagnostics

if TYPE_CHECKING:
    from eisnn.train.trainer import Trainer


class DiagnosticsCallback(Callback):
    """Gradient norms at every step, activity statistics on the evaluations that are due (every
    ``diagnostics_every`` epochs and the last), histogram data at ``histogram_epochs``, and
    their plots when the run draws plots."""

    config_key = "diagnostics"

    def __init__(self) -> None:
        self.diagnostics: TrainingDiagnostics | None = None

    def on_setup(self, trainer: Trainer) -> None:
        cfg = trainer.cfg
        if trainer.ranks.is_main:
            self.diagnostics = TrainingDiagnostics(
                trainer.model,
                trainer.run_dir,
                cfg.epochs,
                cfg.diagnostics_every,
                cfg.histogram_epochs,
            )

    def on_step(self, trainer: Trainer) -> None:
        if self.diagnostics is not None:
            self.diagnostics.after_backward()

    def on_train_epoch_end(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        if self.diagnostics is not None:
            row.update(self.diagnostics.gradient_row())

    @contextlib.contextmanager
    def evaluating(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> Iterator[None]:
        """Records the evaluation when its statistics are due; adds them to ``row`` after it."""
        recorder = self.diagnostics.recorder(epoch) if self.diagnostics is not None else None
        if recorder is None:
            yield
            return
        with recorder:
            yield
        row.update(self.diagnostics.activity_row(epoch, recorder))

    def on_metrics_written(self, trainer: Trainer) -> None:
        if self.diagnostics is not None and trainer.cfg.plots:
            plot_diagnostics(trainer.history, trainer.run_dir, redraw=False)
