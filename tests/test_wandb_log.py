"""``loggers``: TensorBoard and metrics.csv as asked, and Weights & Biases as a callback: a real
offline run (WANDB_MODE=offline, nothing sent) and the exact calls through a stand-in module."""

from __future__ import annotations

import sys
import types

import pytest

from eisnn.run import config_callbacks, resume_run, start_run
from eisnn.train.config import ConfigError, from_dict
from eisnn.train.metrics import read_metrics_csv
from eisnn.train.trainer import Trainer
from eisnn.train.wandb_log import WandbCallback, WandbError, wandb_row
from tiny_runs import TINY_RUN


def tiny(tmp_path, **changes):
    base = dict(TINY_RUN, limit_batches=2, lr=0.01, histograms=False, plots=False,
                out_dir=str(tmp_path / "runs"), name="run", hidden=[16])  # fmt: skip
    return from_dict({**base, **changes})


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """W&B offline into tmp_path; any attempt to reach a server would go to a closed local port."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_a_real_offline_wandb_run_records_every_epoch(tmp_path, offline):
    trainer = start_run(tiny(tmp_path, loggers=["csv", "wandb"]), echo=lambda _: None)
    trainer.fit()
    trainer.close()
    run_dir = tmp_path / "runs" / "run"
    run_id = (run_dir / "wandb_id").read_text()
    (offline_run,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    (record,) = offline_run.glob("*.wandb")
    data = record.read_bytes()
    for tag in ("train/loss", "train/top1", "test/top1", "lr"):
        assert tag.encode() in data, tag
    assert not (run_dir / "tensorboard").exists() and (run_dir / "metrics.csv").is_file()


class FakeRun:
    def __init__(self, log: list, run_id: str) -> None:
        self.id, self.calls = run_id, log

    def log(self, row: dict, step: int) -> None:
        self.calls.append(("log", step, row))

    def finish(self) -> None:
        self.calls.append(("finish",))


def fake_wandb(calls: list) -> types.ModuleType:
    """A stand-in ``wandb`` module with the public calls the logger makes."""
    module = types.ModuleType("wandb")

    def init(**kwargs):
        calls.append(("init", kwargs))
        return FakeRun(calls, kwargs["id"] or "abc123")

    module.init = init
    return module


def test_each_epoch_is_logged_once_and_a_resume_continues_the_same_run(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(calls))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = tiny(tmp_path, loggers=["wandb"], wandb_project="proj")
    trainer = start_run(cfg, echo=lambda _: None)
    trainer.fit(max_epochs=1)
    trainer.close()
    run_dir = tmp_path / "runs" / "run"
    resumed = resume_run(run_dir, echo=lambda _: None)
    resumed.fit()
    resumed.close()
    history = resumed.history
    assert [c[0] for c in calls] == ["init", "log", "finish", "init", "log", "finish"]
    first, second = calls[0][1], calls[3][1]
    assert first["project"] == "proj" and first["name"] == "run" and first["id"] is None
    assert first["config"] == cfg.to_dict() and first["dir"] == str(run_dir)
    assert second["id"] == "abc123" and second["resume"] == "allow"
    assert calls[1] == ("log", 1, wandb_row(history[0]))
    assert calls[4] == ("log", 2, wandb_row(history[1]))
    assert calls[1][2]["train/loss"] == history[0]["train_loss"]
    # only W&B was asked for: no metrics.csv and no TensorBoard files
    assert not (run_dir / "metrics.csv").exists() and not (run_dir / "tensorboard").exists()


def test_the_default_loggers_write_tensorboard_and_csv(tmp_path):
    trainer = start_run(tiny(tmp_path, epochs=1), echo=lambda _: None)
    trainer.fit()
    trainer.close()
    run_dir = tmp_path / "runs" / "run"
    assert any((run_dir / "tensorboard").iterdir())
    assert [row["epoch"] for row in read_metrics_csv(run_dir / "metrics.csv")] == [1]


def test_without_wandb_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails
    with pytest.raises(WandbError, match=r"needs the wandb package: pip install eisnn\[wandb\]"):
        config_callbacks(tiny(tmp_path, loggers=["csv", "wandb"]))


def test_wandb_without_its_callback_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb([]))
    cfg = tiny(tmp_path, loggers=["wandb"])
    with pytest.raises(ConfigError, match=r"^wandb in loggers needs its callback"):
        Trainer(cfg, tmp_path / "run", echo=lambda _: None)
    assert [type(c) for c in config_callbacks(cfg)] == [WandbCallback]
