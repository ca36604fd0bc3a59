"""The trainer's callback interface: every hook, in order, with the trainer and the epoch's row;
a config key that needs a callback is refused without it."""

from __future__ import annotations

import contextlib
import csv

import pytest

from eisnn.diagnostics import DiagnosticsCallback
from eisnn.run import config_callbacks
from eisnn.train.callbacks import Callback
from eisnn.train.config import ConfigError, from_dict
from eisnn.train.trainer import Trainer, resume_run, start_run
from tiny_runs import TINY_RUN


def tiny(tmp_path, **changes):
    base = dict(
        TINY_RUN,
        limit_batches=2,
        eval_every=2,
        lr=0.01,
        histograms=False,
        plots=False,
        out_dir=str(tmp_path),
        name="run",
        hidden=[16],
    )
    return from_dict({**base, **changes})


class Recording(Callback):
    """Notes every hook call; adds a column at the end of training and one after the evaluation."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.trainers: set[int] = set()

    def on_setup(self, trainer):
        self.trainers.add(id(trainer))
        self.calls.append(("setup", trainer.epoch, trainer.step))

    def on_step(self, trainer):
        self.trainers.add(id(trainer))
        grads = any(p.grad is not None for p in trainer.model.parameters())  # after backward
        self.calls.append(("step", trainer.step, grads))

    def on_train_epoch_end(self, trainer, epoch, row):
        self.calls.append(
            ("train_end", epoch, row["epoch"], "train_loss" in row, "test_top1" in row)
        )
        row["custom/train"] = 10 * epoch

    @contextlib.contextmanager
    def evaluating(self, trainer, epoch, row):
        self.calls.append(("eval_start", epoch, "test_top1" in row))
        yield
        self.calls.append(("eval_end", epoch, "test_top1" in row))
        row["custom/eval"] = 1.5

    def on_metrics_written(self, trainer):
        with open(trainer.run_dir / "metrics.csv") as f:
            written = len(list(csv.DictReader(f)))
        self.calls.append(("metrics_written", len(trainer.history), written))


def test_a_callback_receives_every_hook_in_order(tmp_path):
    rec = Recording()
    t = start_run(tiny(tmp_path), echo=lambda _: None, callbacks=lambda cfg: [rec])
    t.fit()
    t.close()
    assert rec.trainers == {id(t)}
    assert rec.calls == [
        ("setup", 0, 0),
        ("step", 0, True),
        ("step", 1, True),
        ("train_end", 1, 1, True, False),
        ("metrics_written", 1, 1),  # epoch 1: no evaluation due (eval_every 2)
        ("step", 2, True),
        ("step", 3, True),
        ("train_end", 2, 2, True, False),
        ("eval_start", 2, False),
        ("eval_end", 2, True),
        ("metrics_written", 2, 2),
    ]
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["custom/train"] for r in rows] == ["10", "20"]
    assert [r["custom/eval"] for r in rows] == ["", "1.5"]


def test_a_resumed_trainer_calls_setup_then_rewrites_the_metrics(tmp_path):
    first = start_run(tiny(tmp_path), echo=lambda _: None)
    first.fit(max_epochs=1)
    first.close()
    rec = Recording()
    t = resume_run(tmp_path / "run", echo=lambda _: None, callbacks=lambda cfg: [rec])
    assert rec.calls == [("setup", 1, 2), ("metrics_written", 1, 1)]
    t.fit()
    t.close()
    assert [c[0] for c in rec.calls[2:]] == [
        "step",
        "step",
        "train_end",
        "eval_start",
        "eval_end",
        "metrics_written",
    ]


def test_diagnostics_without_their_callback_are_refused(tmp_path):
    cfg = tiny(tmp_path, diagnostics=True)
    with pytest.raises(ConfigError, match=r"^diagnostics: true needs its callback.*eisnn\.run"):
        Trainer(cfg, tmp_path / "run", echo=lambda _: None)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert [type(c) for c in config_callbacks(cfg)] == [DiagnosticsCallback]
    assert config_callbacks(tiny(tmp_path)) == []
