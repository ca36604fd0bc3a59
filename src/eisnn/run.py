"""Training runs as ``eisnn train`` starts them: a trainer with every callback its config asks for.

This module sits above both :mod:`eisnn.train` and :mod:`eisnn.diagnostics` and joins them: the
trainer knows callbacks only through :mod:`eisnn.train.callbacks`, and the config keys that
a callback implements (``diagnostics: true``) are turned into callbacks here. Library users
start runs with these functions, or build a :class:`~eisnn.train.trainer.Trainer` with
``callbacks=config_callbacks(cfg)`` (a trainer given ``diagnostics: true`` without the callback
refuses to start).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eisnn.diagnostics.callback import DiagnosticsCallback
from eisnn.train import trainer
from eisnn.train.callbacks import Callback
from eisnn.train.config import TrainConfig
from eisnn.train.trainer import Trainer
from eisnn.train.wandb_log import WandbCallback


def config_callbacks(cfg: TrainConfig) -> list[Callback]:
    """The callbacks that ``cfg``'s keys turn on: :class:`DiagnosticsCallback` for
    ``diagnostics: true``, :class:`WandbCallback` for ``wandb`` in ``loggers``."""
    callbacks: list[Callback] = [DiagnosticsCallback()] if cfg.diagnostics else []
    if "wandb" in cfg.loggers:
        callbacks.append(WandbCallback())
    return callbacks


def start_run(cfg: TrainConfig, echo: Callable[[str], None] = print) -> Trainer:
    """A fresh run of ``cfg`` in a new run directory, with its config's callbacks."""
    return trainer.start_run(cfg, echo, callbacks=config_callbacks)


def resume_run(
    run_dir: str | Path, data_dir: str | None = None, echo: Callable[[str], None] = print
) -> Trainer:
    """Continue the run in ``run_dir`` from its last checkpoint, with the callbacks of the config
    stored there (``data_dir`` may move)."""
    return trainer.resume_run(run_dir, data_dir, echo, callbacks=config_callbacks)
