"""Checkpoints: atomic writes, readable with weights_only, damaged files named, RNG states
restored."""

from __future__ import annotations

import errno
import os
import random

import numpy as np
import pytest
import torch

from eisnn.train import checkpoint as ckpt


def test_a_failed_write_keeps_the_previous_checkpoint_and_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    model = torch.nn.Linear(3, 2)
    ckpt.save_checkpoint(path, model=model, config={"T": 4}, epoch=1)
    before = path.read_bytes()

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_full)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.save_checkpoint(path, model=model, config={"T": 4}, epoch=2)
    assert str(info.value) == (
        f"cannot write checkpoint {path}: {os.strerror(errno.ENOSPC)}; "
        "the previous last.pt is unchanged"
    )
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    assert ckpt.load_checkpoint(path)["epoch"] == 1


def test_checkpoint_round_trip_with_rng_states(tmp_path):
    path = tmp_path / "c.pt"
    model = torch.nn.Linear(3, 2)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_checkpoint(path, model=model, config={"lr": 0.1}, epoch=5, history=[{"epoch": 5}])
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    payload = ckpt.load_checkpoint(path)  # weights_only=True: plain types only
    ckpt.set_rng_state(payload["rng"])
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])
    assert (
        payload["epoch"] == 5
        and payload["config"] == {"lr": 0.1}
        and payload["history"] == [{"epoch": 5}]
    )
    assert all(torch.equal(payload["model"][k], v) for k, v in model.state_dict().items())


def test_damaged_or_foreign_files_are_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="cannot read .*bad.pt"):
        ckpt.load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="foreign.pt is not an eisnn checkpoint"):
        ckpt.load_checkpoint(foreign)
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")
