"""The one atomic writer: whole files or nothing, no temporary file left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eisnn.files import atomic_write, remove_torn_writes


def test_a_write_replaces_the_file_whole_and_creates_its_folder(tmp_path):
    path = tmp_path / "run" / "metrics.csv"
    atomic_write(path, lambda f: f.write(b"old"))
    seen_during_write = []

    def write(f):
        f.write(b"new ")
        seen_during_write.append(path.read_bytes())  # the file in place is still the old one
        f.write(b"contents")

    atomic_write(path, write)
    assert seen_during_write == [b"old"]
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.csv"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, error):
    path = tmp_path / "last.pt"
    path.write_bytes(b"previous checkpoint")

    def write(f):
        f.write(b"half of the new one")
        raise error

    with pytest.raises(type(error)) as info:
        atomic_write(path, write)
    assert info.value is error  # re-raised unchanged
    assert path.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    def write(f):
        f.write(b"partial")
        raise ValueError("cannot encode")

    with pytest.raises(ValueError, match="cannot encode"):
        atomic_write(tmp_path / "plot.png", write)
    assert list(tmp_path.iterdir()) == []


def test_torn_writes_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(done.stdout)  # a process that has exited
    torn = tmp_path / f".last.pt.tmp{dead}-0a1b2c3d"
    live = tmp_path / f".last.pt.tmp{os.getpid()}-0a1b2c3d"  # this process: a write in progress
    other = tmp_path / ".hidden.tmp-notes"  # not a name atomic_write makes
    for path in (torn, live, other):
        path.write_bytes(b"partial")
    assert remove_torn_writes(tmp_path) == [torn]
    assert not torn.exists() and live.exists() and other.exists()
