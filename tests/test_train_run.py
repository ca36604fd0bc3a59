"""The trainer on real data (scikit-learn digits, tiny settings): run directory, resume, NaN
handling."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from eisnn.train import trainer as trainer_module
from eisnn.train.checkpoint import load_checkpoint
from eisnn.train.config import TrainConfig, from_dict
from eisnn.train.schedule import warmup_cosine_lr
from eisnn.train.trainer import NonFiniteError, Trainer, resume_run, start_run
from tiny_runs import TINY_RUN


def tiny(tmp_path, name: str, **changes) -> TrainConfig:
    base = dict(
        TINY_RUN,
        limit_batches=3,
        lr=0.05,
        out_dir=str(tmp_path),
        name=name,
        device="cpu",
        cpu_threads=1,
    )  # bit-exact resume is promised on the CPU
    return from_dict({**base, **changes})


@pytest.fixture(autouse=True)
def keep_thread_count():
    """``cpu_threads`` sets a process-wide count; give the other test modules theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def quiet(_: str) -> None:
    pass


def train(cfg: TrainConfig, max_epochs: int | None = None) -> Trainer:
    t = start_run(cfg, echo=quiet)
    t.fit(max_epochs)
    t.close()
    return t


def test_run_directory_holds_config_metrics_tensorboard_checkpoints_and_plots(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = train(tiny(tmp_path, "run"))
    run = tmp_path / "run"
    assert from_dict(yaml.safe_load((run / "config.yaml").read_text())) == t.cfg
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    rate_columns = [c for c in rows[0] if c.startswith("rate/")]
    assert len(rate_columns) == 2  # two hidden LIF layers of the MLP
    for r in rows:
        assert (
            0 <= float(r["test_top1"]) <= float(r["test_top5"]) <= 100
            and float(r["train_loss"]) > 0
        )
        assert all(0 <= float(r[c]) <= 1 for c in rate_columns)
    for name in ("last.pt", "best.pt"):
        payload = load_checkpoint(run / "checkpoints" / name)
        assert {"model", "optimizer", "scheduler", "rng", "epoch", "config", "history"} <= set(
            payload
        )
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2
    for png in ("learning_curves.png", "firing_rates.png"):
        assert (run / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"histograms": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "test/top1", "test/top5", "lr"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("test/top1")] == [1, 2]
    assert any(tag.startswith("firing_rate/") for tag in tags["histograms"])
    assert any(tag.startswith("weights/") for tag in tags["histograms"])
    assert not [p for p in run.rglob(".*tmp*")]  # no temporary files left


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Trainer:
    """Two epochs without interruption."""
    return train(tiny(tmp_path_factory.mktemp("straight"), "straight"))


def crash_in_epoch_2(t: Trainer) -> None:
    """Make the second training step of epoch 2 raise, as if the process were killed there."""

    def hook(module, inputs, output):
        if module.training and t.epoch == 1 and t.step == 4:
            raise KeyboardInterrupt

    t.model.register_forward_hook(hook)


@pytest.mark.parametrize("interruption", ["stop after epoch 1", "killed during epoch 2"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(
    tmp_path, monkeypatch, straight, interruption
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = start_run(tiny(tmp_path, "run"), echo=quiet)
    if interruption == "stop after epoch 1":
        first.fit(max_epochs=1)
    else:
        crash_in_epoch_2(first)
        with pytest.raises(KeyboardInterrupt):
            first.fit()
    first.close()
    init_calls = []
    monkeypatch.setattr(trainer_module, "ei_init", lambda *a: init_calls.append(a))
    resumed = resume_run(tmp_path / "run", echo=quiet)
    assert resumed.epoch == 1  # at most the interrupted epoch is lost
    resumed.fit()
    resumed.close()
    assert init_calls == []  # a resumed model carries its E-I init state
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "epoch_s"} for r in rows]
    assert drop(straight.history) == drop(resumed.history)
    with open(tmp_path / "run" / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("test/top1")] == [1, 2]


def nan_forward_hook(every: int = 1):
    calls = []

    def hook(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) % every == 0 else output

    return hook


def test_non_finite_loss_stops_naming_epoch_step_and_last_checkpoint(tmp_path):
    t = start_run(tiny(tmp_path, "nan"), echo=quiet)
    t.fit(max_epochs=1)
    run = tmp_path / "nan"
    before = {p: p.read_bytes() for p in (run / "checkpoints" / "last.pt", run / "metrics.csv")}
    t.model.register_forward_hook(nan_forward_hook())
    with pytest.raises(NonFiniteError) as info:
        t.fit()
    message = str(info.value)
    assert "non-finite loss at epoch 2, step 1 of 3" in message
    assert str(run / "checkpoints" / "last.pt") in message and "(epoch 1)" in message
    assert {p: p.read_bytes() for p in before} == before  # nothing already written is damaged
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1


def test_non_finite_steps_can_be_skipped(tmp_path):
    t = start_run(tiny(tmp_path, "skip", nonfinite="skip", epochs=1), echo=quiet)
    t.model.register_forward_hook(nan_forward_hook(every=2))
    result = t.fit()
    t.close()
    row = result.history[-1]
    # forward calls: 1 E-I init, 2 step 1 (NaN), 3 step 2, 4 step 3 (NaN), then the test pass
    assert row["skipped_steps"] == 2 and t.step == 1
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_skipped_steps_keep_the_lr_on_the_iteration_count(tmp_path):
    t = start_run(tiny(tmp_path, "skip", nonfinite="skip", epochs=3), echo=quiet)
    t.model.register_forward_hook(nan_forward_hook(every=2))
    result = t.fit()
    t.close()
    cfg, sched = t.cfg, t.scheduler
    lengths = (sched.warmup_iters, sched.total_iters)
    # the lr after each epoch of 3 iterations (the third epoch ends at min_lr)
    expected = [
        warmup_cosine_lr(k, cfg.lr, cfg.warmup_start_lr, cfg.min_lr, *lengths) for k in (3, 6)
    ]
    assert t.skipped > 0 and t.step + t.skipped == 9
    assert [row["lr"] for row in result.history[:2]] == expected


def test_a_named_run_directory_is_never_overwritten(tmp_path):
    train(tiny(tmp_path, "taken", epochs=1))
    with pytest.raises(FileExistsError, match="eisnn train --resume"):
        start_run(tiny(tmp_path, "taken", epochs=1), echo=quiet)


def test_a_narrow_e_i_network_is_warned_about_in_one_log_line(tmp_path):
    lines: list[str] = []
    cfg = tiny(tmp_path, "narrow", hidden=[8, 8], epochs=1, limit_batches=1, plots=False)
    t = start_run(cfg, echo=lines.append)
    t.fit()
    t.close()
    warned = [line for line in lines if line.startswith("warning: ei_init:")]
    assert len(warned) == 1 and "fewest 2" in warned[0] and "\n" not in warned[0]
