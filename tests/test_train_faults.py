"""Faults that must not lose data: a process killed while it writes a checkpoint, a damaged
checkpoint given to ``--resume`` or ``eval``, and a full disk while a checkpoint is written."""

from __future__ import annotations

import csv
import errno
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eisnn.cli import main
from eisnn.train import checkpoint as ckpt

SRC = Path(__file__).resolve().parents[1] / "src"

# The offline digits run, as small as it goes: two epochs of two batches.
TINY = [
    "--set",
    "epochs=2",
    "--set",
    "limit_batches=2",
    "--set",
    "T=2",
    "--set",
    "progress=false",
    "--set",
    "cpu_threads=1",
]

# Runs ``eisnn ARGS...`` with ``torch.save`` replaced: the second write of ``last.pt`` writes half
# of its bytes to the temporary file, then the process kills itself (SIGKILL: no cleanup runs).
KILLED_WHILE_WRITING_THE_SECOND_LAST_PT = """
import io, os, signal, sys
from pathlib import Path
import torch
from eisnn.cli import main

real_save, writes = torch.save, []

def save(obj, f, *args, **kwargs):
    if Path(f.name).name.startswith(".last.pt.tmp"):
        writes.append(f.name)
        if len(writes) == 2:
            whole = io.BytesIO()
            real_save(obj, whole, *args, **kwargs)
            f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, f, *args, **kwargs)

torch.save = save
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(autouse=True)
def keep_thread_count():
    """``cpu_threads`` sets a process-wide count; give the other test modules theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def epochs_in_metrics(run_dir: Path) -> list[str]:
    with open(run_dir / "metrics.csv") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_sigkill_mid_write_keeps_last_pt_and_resume_finishes(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_WHILE_WRITING_THE_SECOND_LAST_PT,
            "train",
            "--out",
            str(tmp_path),
            "--set",
            "name=run",
            *TINY,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.pt"
    torn = list(last.parent.glob(".last.pt.tmp*"))
    assert len(torn) == 1 and torn[0].stat().st_size > 0  # killed in the middle of the write
    before = ckpt.load_checkpoint(last)
    assert before["epoch"] == 1

    code, out, err = run(capsys, "train", "--resume", str(run_dir))
    assert code == 0, err
    assert f"resuming {run_dir} after epoch 1/2" in out
    after = ckpt.load_checkpoint(last)
    assert after["epoch"] == 2
    assert after["history"][:1] == before["history"]  # continued from epoch 1, not restarted
    assert epochs_in_metrics(run_dir) == ["1", "2"]


def _damage(path: Path, how: str, weight: torch.Tensor) -> None:
    """Truncate or empty a checkpoint, or flip one byte inside its stored weights."""
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        at = raw.find(weight.numpy().tobytes())
        assert at > 0
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1 :])


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped byte in the weights"])
@pytest.mark.parametrize("command", ["resume", "eval"])
def test_a_damaged_checkpoint_is_one_error_line_naming_it(tmp_path, capsys, command, how):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.pt"
    model = torch.nn.Linear(16, 8)
    ckpt.save_checkpoint(last, model=model, config={"model": "ei_mlp"}, epoch=1)
    _damage(last, how, model.weight.detach())
    argv = ["train", "--resume", str(run_dir)] if command == "resume" else ["eval", str(last)]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"eisnn: error: cannot read {last}: ") and err.count("\n") == 1


def test_a_full_disk_keeps_the_previous_checkpoint_and_stops(tmp_path, capsys, monkeypatch):
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    real_save, writes, previous = torch.save, [], []

    def disk_full_on_the_second_last_pt(obj, f, *args, **kwargs):
        if Path(f.name).name.startswith(".last.pt.tmp"):
            writes.append(f.name)
            if len(writes) == 2:
                previous.append(last.read_bytes())
                whole = io.BytesIO()
                real_save(obj, whole, *args, **kwargs)
                f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_second_last_pt)
    code, _, err = run(capsys, "train", "--out", str(tmp_path), "--set", "name=run", *TINY)
    assert code == 2 and len(previous) == 1
    assert err == (
        f"eisnn: error: cannot write checkpoint {last}: {os.strerror(errno.ENOSPC)}; "
        "the previous last.pt is unchanged\n"
    )
    assert last.read_bytes() == previous[0]
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]  # no temp file
    assert ckpt.load_checkpoint(last)["epoch"] == 1
