"""The one atomic writer: whole files or nothing, no temporary file left behind."""

from __future__ import annotations

import pytest

from eisnn.files import atomic_write


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
