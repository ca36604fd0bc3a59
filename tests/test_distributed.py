"""Distributed training on 2 CPU processes (gloo): shared E-I Init, equality with one process over
the combined batch, resume under torchrun, one-line errors for a bad batch size and a silent
peer."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from eisnn.train.checkpoint import load_checkpoint
from eisnn.train.config import from_dict
from eisnn.train.distributed import ShardBatchSampler, Sharding, lost_peer
from eisnn.train.trainer import resume_run, start_run
from tiny_runs import TINY_RUN

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = dict(
    TINY_RUN,
    limit_batches=3,
    lr=0.05,
    histograms=False,
    device="cpu",
    cpu_threads=1,
    name="run",
)


@pytest.fixture(autouse=True)
def keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------ launching
def free_port() -> int:
    """A free port below the kernel's ephemeral range, so that the connections gloo opens during one
    scenario (ephemeral ports) can never take the port a later scenario's rendezvous will use."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    for port in random.Random().sample(range(20000, min(low, 32000)), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _rank_main(rank: int, world: int, ports: list[int], out: str) -> None:
    """One process: each scenario in turn, under the variables torchrun would set (a fresh port
    each); its result goes to ``out/<scenario>-rank<r>.pt``."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1"
    )
    for port, scenario in zip(ports, SCENARIOS):
        os.environ["MASTER_PORT"] = str(port)
        result = scenario(rank, str(Path(out) / scenario.__name__))
        torch.save(result, Path(out) / f"{scenario.__name__}-rank{rank}.pt")


def launch(out: Path, world: int = 2, timeout: float = 240) -> None:
    """Run every scenario in ``world`` spawned processes; rank 1 is stopped once rank 0 is done with
    the last one (there it never answers again)."""
    needed = [
        out / f"{s.__name__}-rank{r}.pt"
        for s in SCENARIOS
        for r in range(world)
        if (s, r) != (SCENARIOS[-1], 1)
    ]
    ctx = mp.start_processes(
        _rank_main,
        args=(world, [free_port() for _ in SCENARIOS], str(out)),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout
    try:
        while not all(p.exists() for p in needed):
            if any(p.exitcode not in (None, 0) for p in ctx.processes):
                ctx.join(0)  # raises with the failed rank's traceback
            assert time.monotonic() < deadline, "the launch did not finish in time"
            time.sleep(0.2)
    finally:
        for p in ctx.processes:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


def result(out: Path, scenario, rank: int) -> Any:
    return torch.load(out / f"{scenario.__name__}-rank{rank}.pt", weights_only=False)


# ------------------------------------------------------------------------------ scenarios
def quiet(_: str) -> None:
    pass


def straight(rank: int, out_dir: str) -> dict[str, Any]:
    """Train TINY; snapshot the state after the E-I Init (before the first step) and after every
    step."""
    t = start_run(from_dict({**TINY, "out_dir": out_dir}), echo=quiet)
    snapshots: list[dict[str, torch.Tensor]] = []

    def snap(*_: Any) -> None:
        snapshots.append({k: v.detach().clone() for k, v in t.model.state_dict().items()})

    t.optimizer.register_step_pre_hook(lambda *a: None if snapshots else snap())
    t.optimizer.register_step_post_hook(snap)  # after the Dale projection, registered first
    t.fit()
    t.close()
    return {"snapshots": snapshots, "history": t.history, "run_dir": str(t.run_dir)}


def stopped(rank: int, out_dir: str) -> dict[str, Any]:
    """TINY stopped after epoch 1 (the processes leave their process group)."""
    t = start_run(from_dict({**TINY, "out_dir": out_dir}), echo=quiet)
    t.fit(max_epochs=1)
    t.close()
    return {"epoch": t.epoch}


def resumed(rank: int, out_dir: str) -> dict[str, Any]:
    """The stopped run continued to the end in a new process group."""
    t = resume_run(Path(out_dir).parent / "stopped" / "run", echo=quiet)
    start_epoch = t.epoch
    t.fit()
    t.close()
    return {"start_epoch": start_epoch, "state": t.model.state_dict(), "history": t.history}


def silent_peer(rank: int, out_dir: str) -> dict[str, Any]:
    """``eisnn train`` where rank 1 stops answering in its second epoch: what rank 0 reports."""
    from eisnn.cli import main
    from eisnn.train import trainer

    if rank == 1:
        original = trainer.Trainer._train_epoch

        def hang(self, epoch):
            if epoch == 1:
                time.sleep(600)
            return original(self, epoch)

        trainer.Trainer._train_epoch = hang
    err = io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stderr(err):
        code = main(
            [
                "train",
                "--out",
                out_dir,
                "--set",
                "dist_timeout_s=3",
                *[f"--set={k}={v}" for k, v in TINY.items()],
            ]
        )
    return {"code": code, "stderr": err.getvalue(), "seconds": time.monotonic() - start}


SCENARIOS = (straight, stopped, resumed, silent_peer)


# ------------------------------------------------------------------------------ tests
def test_parts_of_a_global_batch_concatenate_to_it():
    for n in (64, 37, 5, 1):
        parts = [Sharding(r, 4, equal=False).bounds(n) for r in range(4)]
        assert (
            parts[0][0] == 0
            and parts[-1][1] == n
            and all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        )
        equal = [Sharding(r, 4, equal=True).bounds(n) for r in range(4)]
        assert {hi - lo for lo, hi in equal} == {n // 4} and equal[-1][1] == n - n % 4
    gen = [torch.Generator().manual_seed(3) for _ in range(3)]
    batches = [
        list(ShardBatchSampler(10, 4, Sharding(r, 2, equal=True), True, gen[r])) for r in range(2)
    ]
    order = torch.randperm(10, generator=gen[2]).tolist()
    assert [a + b for a, b in zip(*batches)] == [order[0:4], order[4:8], order[8:10]]
    assert (
        len(ShardBatchSampler(9, 4, Sharding(0, 2, equal=True), True, gen[0])) == 2
    )  # 1 left over: no part


def raised_in(filename: str, message: str) -> RuntimeError:
    """A RuntimeError whose innermost frame is in ``filename`` (as if raised by that code)."""
    scope: dict[str, Any] = {}
    exec(compile(f"def fail():\n    raise RuntimeError({message!r})\n", filename, "exec"), scope)
    try:
        scope["fail"]()
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def test_only_a_collective_that_lost_its_peer_is_reported_as_such(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    c10d = "/site-packages/torch/distributed/distributed_c10d.py"
    timeout = "[../tcp/unbound_buffer.cc:78] Timed out waiting 3000ms for recv operation"
    assert lost_peer(raised_in(c10d, timeout)).startswith("lost contact with another process")
    ddp = "/site-packages/torch/nn/parallel/distributed.py"
    assert lost_peer(raised_in(ddp, "Connection closed by peer [127.0.0.1]:29500"))
    assert lost_peer(raised_in(c10d, "Tensors must be contiguous")) is None  # a collective misused
    assert (
        lost_peer(
            raised_in(
                "/site-packages/torch/utils/data/dataloader.py",
                "DataLoader timed out after 5 seconds",
            )
        )
        is None
    )  # not a collective
    monkeypatch.delenv("RANK")
    assert lost_peer(raised_in(c10d, timeout)) is None  # one process: no peer to lose


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """Every scenario run once by 2 CPU processes (gloo); their results in the returned folder."""
    out = tmp_path_factory.mktemp("ddp")
    launch(out)
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, Any]:
    threads = torch.get_num_threads()
    try:
        return straight(0, str(tmp_path_factory.mktemp("single")))
    finally:
        torch.set_num_threads(threads)


def test_two_processes_keep_identical_weights_equal_to_one_process_on_the_combined_batch(
    two_ranks, one_process
):
    ranks = [result(two_ranks, straight, r) for r in range(2)]
    steps = 2 * TINY["limit_batches"]
    for res in (*ranks, one_process):
        assert len(res["snapshots"]) == 1 + steps
    for k, (a, b, s) in enumerate(
        zip(ranks[0]["snapshots"], ranks[1]["snapshots"], one_process["snapshots"])
    ):
        assert a.keys() == b.keys() == s.keys()
        assert all(torch.equal(a[n], b[n]) for n in a), f"ranks differ at snapshot {k}"
        if k == 0:  # the E-I Init from the gathered first global batch is the single-process init
            assert all(torch.equal(a[n], s[n]) for n in a)
            assert all(bool(v) for n, v in a.items() if n.endswith(".initialized"))
        else:
            worst = max((a[n].double() - s[n].double()).abs().max().item() for n in a)
            assert worst < 1e-5, f"step {k}: max difference to one process {worst:.3g}"
    changed = [n for n in a if not torch.equal(ranks[0]["snapshots"][0][n], a[n])]
    assert any(".w_ee" in n for n in changed)  # training moved the weights
    untouched = [n for n in s if torch.equal(one_process["snapshots"][0][n], s[n])]
    assert "head.module.g_i" in untouched and not set(untouched) & set(
        changed
    )  # e.g. the readout's unused gains
    for r, s in zip(ranks[0]["history"], one_process["history"]):
        assert r["train_loss"] == pytest.approx(s["train_loss"], rel=1e-5)
        assert r["train_top1"] == pytest.approx(s["train_top1"]) and r[
            "test_top1"
        ] == pytest.approx(s["test_top1"])
        assert r["test_loss"] == pytest.approx(s["test_loss"], rel=1e-5)
        assert r["rate/stem.lif"] == pytest.approx(s["rate/stem.lif"], rel=1e-5)
    run = Path(ranks[0]["run_dir"])  # one set of files, written by rank 0
    with open(run / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["world_size"] == 2


def test_resume_under_two_processes_is_bit_identical_to_the_uninterrupted_run(two_ranks):
    straight_run = [result(two_ranks, straight, r) for r in range(2)]
    for r in range(2):
        res = result(two_ranks, resumed, r)
        assert result(two_ranks, stopped, r)["epoch"] == 1 and res["start_epoch"] == 1
        final = straight_run[r]["snapshots"][-1]
        assert all(torch.equal(res["state"][n], final[n]) for n in final)
        drop = lambda rows: [{k: v for k, v in row.items() if k != "epoch_s"} for row in rows]
        assert drop(res["history"]) == drop(straight_run[r]["history"])
    with open(two_ranks / "stopped" / "run" / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


def test_a_silent_peer_stops_the_others_after_the_timeout(two_ranks):
    rank0 = result(two_ranks, silent_peer, 0)
    assert rank0["code"] == 2
    lines = rank0["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "eisnn: error: [rank 0/2] lost contact with another process"
    ), lines
    assert "dist_timeout_s" in lines[0]
    assert rank0["seconds"] < 60


def torchrun(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "-m",
            "eisnn",
            "train",
            *argv,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_the_documented_torchrun_command_trains_and_only_rank_0_prints_and_writes(tmp_path):
    done = torchrun(
        "--out", str(tmp_path), *[f"--set={k}={v}" for k, v in TINY.items()], "--set", "epochs=1"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        done.stdout.count("run directory:") == 2 and done.stdout.count("test accuracy: top-1") == 1
    )
    assert "2 processes" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["world_size"] == 2


def test_a_batch_size_not_divisible_by_the_world_size_is_refused(monkeypatch, capsys):
    from eisnn.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    code = main(["train", *[f"--set={k}={v}" for k, v in TINY.items()]])
    err = capsys.readouterr().err
    assert code == 2 and err == (
        "eisnn: error: [rank 0/3] batch_size 64 is not divisible by the 3 processes; use a "
        "multiple of 3, or batch_scope=rank to make batch_size per process\n"
    )
