"""The training loop's extension points: what a :class:`~eisnn.train.trainer.Trainer` calls, when.

A callback subclasses :class:`Callback` and overrides the hooks it needs (the others do nothing).
The trainer calls every hook on its callbacks in the order they were given, on every process
of a distributed run unless said otherwise; ``epoch`` is 1-based, ``row`` is the epoch's row of
the run history (``metrics.csv``), to which a hook may add columns:

1. ``on_setup(trainer)``: once, at the end of building the trainer (model, optimizer, loaders
   and run directory ready; a resumed run's weights and history restored).
2. ``on_step(trainer)``: after each backward pass whose loss and gradients are finite, before
   the optimizer step; the gradients are the ones the optimizer is about to use.
3. ``on_train_epoch_end(trainer, epoch, row)``: after an epoch's last step; ``row`` holds the
   training columns.
4. ``evaluating(trainer, epoch, row)``: a context manager around the epoch's test evaluation,
   when one is due; inside it the trainer adds the test columns to ``row``.
5. ``on_metrics_written(trainer)``: on the main process, after ``metrics.csv`` and the run's
   plots were rewritten from ``trainer.history`` (every epoch end, and when a resumed trainer
   is built).
6. ``on_close(trainer)``: once, when the trainer is closed.

Some config keys are implemented by a callback (``diagnostics: true`` by
:class:`eisnn.diagnostics.DiagnosticsCallback`, ``wandb`` in ``loggers`` by
:class:`eisnn.train.wandb_log.WandbCallback`). Such a callback names its key in
``config_key``; a trainer whose config turns the key on without that callback refuses to start
(:func:`check_config_keys`); :func:`eisnn.run.config_callbacks` builds them from a config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eisnn.train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from eisnn.train.trainer import Trainer

#: What only a callback implements: its key -> (whether a config turns it on, the setting).
CALLBACK_KEYS: dict[str, tuple[Callable[[TrainConfig], bool], str]] = {
    "diagnostics": (lambda cfg: cfg.diagnostics, "diagnostics: true"),
    "wandb": (lambda cfg: "wandb" in cfg.loggers, "wandb in loggers"),
}


class Callback:
    """Hooks into the training loop; every hook does nothing until overridden."""

    #: The config key this callback implements (one of ``CALLBACK_KEYS``), or None.
    config_key: str | None = None

    def on_setup(self, trainer: Trainer) -> None:
        """Once, when the trainer is ready (before its first epoch)."""

    def on_step(self, trainer: Trainer) -> None:
        """After a finite backward pass, before the optimizer step."""

    def on_train_epoch_end(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        """After the training steps of ``epoch``; ``row`` holds its training columns."""

    def evaluating(
        self, trainer: Trainer, epoch: int, row: dict[str, Any]
    ) -> contextlib.AbstractContextManager[None]:
        """A context manager around the test evaluation of ``epoch`` (default: nothing)."""
        return contextlib.nullcontext()

    def on_metrics_written(self, trainer: Trainer) -> None:
        """After ``metrics.csv`` and the plots were rewritten (main process only)."""

    def on_close(self, trainer: Trainer) -> None:
        """When the trainer is closed."""


#: Builds a run's callbacks from its config (for a resumed run, the config of its checkpoint).
CallbackFactory = Callable[[TrainConfig], Sequence[Callback]]


def no_callbacks(cfg: TrainConfig) -> Sequence[Callback]:
    """The :data:`CallbackFactory` of a plain run: no callbacks."""
    return ()


def check_config_keys(cfg: TrainConfig, callbacks: Sequence[Callback]) -> None:
    """Raise :class:`ConfigError` when ``cfg`` turns on a key of ``CALLBACK_KEYS`` and no
    callback implements it (the key would otherwise do nothing)."""
    served = {callback.config_key for callback in callbacks}
    for key, (wanted, setting) in CALLBACK_KEYS.items():
        if wanted(cfg) and key not in served:
            raise ConfigError(
                f"{setting} needs its callback, and this trainer was given none; "
                f"start the run with eisnn.run.start_run (as `eisnn train` does) or "
                f"pass callbacks=eisnn.run.config_callbacks(cfg)"
            )
