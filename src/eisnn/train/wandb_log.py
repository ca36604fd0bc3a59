"""Weights & Biases logging (``loggers: [..., wandb]``), as a training callback.

On the main process the callback opens a W&B run (``wandb.init(project=wandb_project,
name=<run directory name>, config=<the run's config>)``) and logs each epoch's numeric
columns of the history with ``step=epoch``, under TensorBoard's tags (``train_loss`` ->
``train/loss``). W&B files go to ``<run dir>/wandb`` unless ``WANDB_DIR`` says otherwise; its
own settings apply (``WANDB_MODE=offline`` logs without an account or network, ``wandb sync``
uploads later). The W&B run id is kept in ``<run dir>/wandb_id``, so ``--resume`` continues the
same W&B run from the next epoch. ``wandb`` is an optional extra: ``pip install eisnn[wandb]``.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eisnn.errors import UserError
from eisnn.files import atomic_write
from eisnn.train.callbacks import Callback
from eisnn.train.metrics import metric_tag

if TYPE_CHECKING:
    from eisnn.train.trainer import Trainer

__all__ = ["WandbCallback", "WandbError", "wandb_row"]

ID_FILE = "wandb_id"


class WandbError(UserError, RuntimeError):
    """W&B logging that cannot start (one line: what is missing or what wandb said)."""


def _import_wandb() -> ModuleType:
    try:
        import wandb
    except ImportError:
        raise WandbError(
            "loggers: wandb needs the wandb package: "
            "pip install eisnn[wandb] (or pip install wandb)"
        ) from None
    return wandb


def wandb_row(row: dict[str, Any]) -> dict[str, float | int]:
    """The numeric columns of a history row (not ``epoch``, the step), under TensorBoard's tags."""
    return {
        metric_tag(key): value
        for key, value in row.items()
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class WandbCallback(Callback):
    """Logs every epoch's row of the run history to a W&B run (main process only)."""

    config_key = "wandb"

    def __init__(self) -> None:
        self.wandb = _import_wandb()
        self.run: Any = None
        self.logged = 0  # history rows already sent

    def on_setup(self, trainer: Trainer) -> None:
        if not trainer.ranks.is_main:
            return
        id_file = trainer.run_dir / ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        try:
            self.run = self.wandb.init(
                project=trainer.cfg.wandb_project,
                name=trainer.run_dir.name,
                config=trainer.cfg.to_dict(),
                dir=None if os.environ.get("WANDB_DIR") else str(trainer.run_dir),
                id=run_id,
                resume="allow" if run_id else None,
            )
        except Exception as err:  # wandb's login, network and settings errors
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise WandbError(
                f"loggers: wandb could not start a run ({reason}); "
                "WANDB_MODE=offline logs without an account"
            ) from None
        if run_id is None:
            text = self.run.id.encode()
            atomic_write(id_file, lambda f: f.write(text))
        self.logged = trainer.epoch  # earlier epochs were logged by the process that ran them

    def on_metrics_written(self, trainer: Trainer) -> None:
        if self.run is None:
            return
        for row in trainer.history[self.logged :]:
            self.run.log(wandb_row(row), step=row["epoch"])
        self.logged = len(trainer.history)

    def on_close(self, trainer: Trainer) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
