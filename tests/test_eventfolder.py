"""``eventfolder``: class folders of recordings in AEDAT, .npy, .npz and HDF5, both layouts,
the whole path to a trained step, and one error line naming the file for each bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from eisnn.cli import main
from eisnn.data import (
    create_dataset,
    dataset_info,
    events_to_counts,
    write_aedat2,
    write_aedat31,
)
from eisnn.data.aedat import make_events
from eisnn.data.eventfolder import read_recording
from eisnn.train.config import from_dict
from eisnn.train.distributed import Ranks
from eisnn.train.factory import build_loader

SENSOR = (6, 10)  # H, W


def make_recording(seed: int, label: int, n: int = 60, sensor=SENSOR) -> dict[str, np.ndarray]:
    """Events whose x lies in the label's band of columns (so a classifier can learn them); the
    last event sits at the sensor's far corner so the inferred size is the sensor's."""
    rng = np.random.default_rng(seed)
    H, W = sensor
    t = np.sort(rng.integers(0, 10_000, n))
    x = rng.integers(0, W // 2, n) + (W // 2) * (label % 2)
    y = rng.integers(0, H, n)
    x[-1], y[-1], t[-1] = W - 1, H - 1, 10_000
    return make_events(t, x, y, rng.integers(0, 2, n))


def structured(events: dict[str, np.ndarray]) -> np.ndarray:
    """A tonic-style structured array (fields t, x, y, p)."""
    dtype = [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "?")]
    out = np.zeros(len(events["t"]), dtype=dtype)
    for key in ("t", "x", "y", "p"):
        out[key] = events[key]
    return out


def write(path: Path, events: dict[str, np.ndarray]) -> None:
    """Write ``events`` in the format that ``path``'s suffix (and name) asks for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, structured(events))
    elif path.suffix == ".npz" and "split" in path.stem:
        np.savez(path, **{k: v for k, v in events.items()})
    elif path.suffix == ".npz":
        np.savez(path, events=structured(events))
    elif path.suffix == ".h5":
        with h5py.File(path, "w") as f:
            for key, value in events.items():
                f.create_dataset(f"events/{key}", data=value)
    elif path.stem.endswith("v2"):
        write_aedat2(path, events)
    else:
        write_aedat31(path, events)


NAMES = ["a.npy", "b.npz", "c_split.npz", "d.h5", "e.aedat", "f_v2.aedat"]


def make_folder(root: Path, classes=("left", "right"), per_class: int = 6, prefix="") -> dict:
    """Class folders cycling through every format; returns ``{path: events written}``."""
    written = {}
    for label, cls in enumerate(classes):
        for i in range(per_class):
            path = root / prefix / cls / f"{i:02d}_{NAMES[i % len(NAMES)]}"
            written[path] = make_recording(100 * label + i, label)
            write(path, written[path])
    return written


def test_every_format_reads_back_the_events_written(tmp_path):
    written = make_folder(tmp_path)
    for path, events in written.items():
        got = read_recording(path)
        for key in ("t", "x", "y", "p"):
            assert np.array_equal(got[key], events[key]), (path.name, key)


def test_polarity_minus_one_plus_one_maps_to_off_on(tmp_path):
    events = make_recording(0, 0)
    np.savez(tmp_path / "r.npz", t=events["t"], x=events["x"], y=events["y"],
             p=events["p"].astype(np.int8) * 2 - 1)  # fmt: skip
    assert np.array_equal(read_recording(tmp_path / "r.npz")["p"], events["p"])


def test_split_layout_is_stratified_seeded_and_frames_are_the_recordings(tmp_path):
    written = make_folder(tmp_path / "rec", per_class=10)
    opts = dict(cache_dir=tmp_path / "cache", val_fraction=0.2, split_by="time")
    with pytest.raises(ValueError, match="6x10 \\(not square\\); set image_size"):
        dataset_info("eventfolder", tmp_path / "rec", **opts)  # networks need a square input
    train = create_dataset("eventfolder", tmp_path / "rec", True, T=3, augment=False, **opts)
    val = create_dataset("eventfolder", tmp_path / "rec", False, T=3, **opts)
    assert len(train) == 16 and len(val) == 4  # round(0.2 * 10) = 2 per class held out
    assert sorted(val.labels.tolist()) == [0, 0, 1, 1]
    assert sorted(train.labels.tolist()) == [0] * 8 + [1] * 8
    # every stored sample is the counts of one written recording, and no recording is in both
    counts = {
        p: events_to_counts(e, 3, "time", SENSOR).astype(np.float32) for p, e in written.items()
    }
    for dataset in (train, val):
        for i in range(len(dataset)):
            x, label = dataset[i]
            matches = [p for p, c in counts.items() if torch.equal(x, torch.from_numpy(c))]
            assert len(matches) == 1 and ["left", "right"].index(matches[0].parent.name) == label
            counts.pop(matches[0])
    assert not counts
    again = create_dataset("eventfolder", tmp_path / "rec", False, T=3, **opts)
    assert torch.equal(torch.stack([again[i][0] for i in range(4)]),
                       torch.stack([val[i][0] for i in range(4)]))  # fmt: skip


def test_sensor_size_is_inferred_or_set_and_image_size_resizes(tmp_path):
    make_folder(tmp_path / "rec", prefix="train")
    make_folder(tmp_path / "rec", prefix="val", per_class=2)
    root, cache = tmp_path / "rec", tmp_path / "cache"
    info = dataset_info("eventfolder", root, cache_dir=cache, image_size=8)
    assert (info.num_classes, info.in_channels, info.image_size, info.is_event) == (2, 2, 8, True)
    ds = create_dataset("eventfolder", root, False, T=2, cache_dir=cache, image_size=8)
    assert len(ds) == 4 and ds[0][0].shape == (2, 2, 8, 8)
    train = create_dataset("eventfolder", root, True, T=2, cache_dir=cache, image_size=8)
    assert len(train) == 12 and train[0][0].shape == (2, 2, 8, 8)
    big = create_dataset("eventfolder", root, False, T=2, cache_dir=cache, sensor_size=[12, 12])
    raw = create_dataset(
        "eventfolder", root, False, T=2, cache_dir=cache, sensor_size=[12, 12], augment=False
    )
    assert big[0][0].shape == (2, 2, 12, 12) and torch.equal(
        big[0][0][..., 6:, :], raw[0][0][..., 6:, :]
    )
    assert big[0][0][..., 6:, :].sum() == 0 and big[0][0].sum() == 60  # all events kept


def test_a_training_run_on_an_event_folder(tmp_path, capsys):
    make_folder(tmp_path / "rec", prefix="train", per_class=8)
    make_folder(tmp_path / "rec", prefix="val", per_class=2)
    argv = ["train", "--out", str(tmp_path / "runs")]
    for option in (
        "name=r", "model=ei_vgg8", "width=0.125", "dataset=eventfolder",
        f"data_dir={tmp_path / 'rec'}",
        "image_size=32", "T=2", "epochs=1", "batch_size=4", "limit_batches=2", "progress=false",
        "split_by=time", "plots=false", "histograms=false",
    ):  # fmt: skip
        argv += ["--set", option]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "test accuracy: top-1 " in out
    ckpt = torch.load(tmp_path / "runs" / "r" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 2


def _damage(root: Path, kind: str) -> Path:
    """Spoil one file (or folder) of a good event folder in one way; returns what it names."""
    events = make_recording(7, 0)
    bad = root / "left" / "zz_bad"
    if kind == "npy without p":
        bad = bad.with_suffix(".npy")
        np.save(bad, structured(events)[["t", "x", "y"]])
    elif kind == "npz without y":
        bad = bad.with_suffix(".npz")
        np.savez(bad, t=events["t"], x=events["x"], p=events["p"])
    elif kind == "h5 without t":
        bad = bad.with_suffix(".h5")
        with h5py.File(bad, "w") as f:
            for key in ("x", "y", "p"):
                f.create_dataset(f"events/{key}", data=events[key])
    elif kind == "truncated aedat":
        bad = bad.with_suffix(".aedat")
        write_aedat31(bad, events)
        bad.write_bytes(bad.read_bytes()[:-5])
    elif kind == "garbage npy":
        bad = bad.with_suffix(".npy")
        bad.write_bytes(b"not numpy at all")
    elif kind == "class with no recording":
        bad = root / "empty"
        bad.mkdir()
        (bad / "notes.txt").write_text("no recordings here")
    return bad


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("npy without p", "event array has no field p (needs t, x, y, p; has t, x, y)"),
        ("npz without y", "event array has no field y"),
        ("h5 without t", "event array has no field t"),
        ("truncated aedat", "unreadable recording (truncated packet at byte 61"),
        ("garbage npy", "unreadable recording (not a NumPy .npy file)"),
        ("class with no recording", "holds no .aedat/.h5/.hdf5/.npy/.npz file"),
    ],
)
def test_a_bad_input_is_one_error_line_naming_the_file(tmp_path, capsys, kind, reason):
    make_folder(tmp_path / "rec")
    bad = _damage(tmp_path / "rec", kind)
    argv = ["train", "--out", str(tmp_path / "runs"), "--set", "dataset=eventfolder"]
    argv += ["--set", f"data_dir={tmp_path / 'rec'}", "--set", "sensor_size=[6, 10]"]
    argv += ["--set", "image_size=32", "--set", "progress=false"]
    code = main(argv)
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]  # after the cache's cleared progress bar
    assert code == 2 and err.startswith("eisnn: error: ") and err.count("\n") == 1, err
    assert str(bad) in err and reason in err, err


def test_a_val_class_missing_from_train_is_an_error(tmp_path):
    make_folder(tmp_path / "rec", prefix="train")
    make_folder(tmp_path / "rec", prefix="val", classes=("left", "up"), per_class=1)
    with pytest.raises(ValueError, match="class 'up' is not a class folder of train/") as err:
        create_dataset("eventfolder", tmp_path / "rec", False, T=2, sensor_size=[6, 10])
    assert str(err.value).startswith(str(tmp_path / "rec" / "val" / "up"))


def test_events_outside_the_given_sensor_name_the_file(tmp_path):
    written = make_folder(tmp_path / "rec")
    with pytest.raises(ValueError, match="outside the 6x8 sensor.*set sensor_size") as err:
        create_dataset("eventfolder", tmp_path / "rec", True, T=2, sensor_size=[6, 8])
    assert str(next(iter(written))) in str(err.value)


def test_hdf5_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "r.h5"
    write(path, make_recording(0, 0))
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)  # import h5py now fails
    with pytest.raises(ValueError, match=r"needs h5py: pip install eisnn\[h5\]") as err:
        read_recording(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_other_and_hidden_files_are_skipped_with_one_warning_giving_the_count(tmp_path):
    make_folder(tmp_path / "rec", per_class=3)
    (tmp_path / "rec" / "left" / "notes.txt").write_text("not a recording")
    write(tmp_path / "rec" / "right" / ".hidden.npy", make_recording(0, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = create_dataset("eventfolder", tmp_path / "rec", True, T=2, sensor_size=[6, 10])
    assert len(train) == 4  # 3 per class, 1 of each held out; the two others skipped
    (warning,) = caught
    assert "skipped 2 file(s)" in str(warning.message) and "notes.txt" in str(warning.message)


# ------------------------------------------------------------------------------ loaders
@pytest.fixture
def split_recordings(tmp_path) -> Path:
    """``train/`` (6 recordings per class) and ``val/`` (2 per class)."""
    make_folder(tmp_path / "rec", prefix="train")
    make_folder(tmp_path / "rec", prefix="val", per_class=2)
    return tmp_path / "rec"


def loader_batches(folder: Path, ranks: Ranks | None = None, **keys) -> list:
    """One epoch of the training loader the trainer builds, its generator seeded with 123."""
    cfg = dict(dataset="eventfolder", data_dir=str(folder), image_size=8, T=2, batch_size=4)
    loader, generator = build_loader(
        from_dict({**cfg, "split_by": "time", **keys}), True, torch.device("cpu"), ranks
    )
    generator.manual_seed(123)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_zero_and_two_workers_give_the_same_augmented_batches(split_recordings):
    alone = loader_batches(split_recordings, num_workers=0)
    workers = loader_batches(split_recordings, num_workers=2, persistent_workers=True)
    plain = loader_batches(split_recordings, augment=False)
    assert len(alone) == len(workers) == 3
    for (xa, ya), (xb, yb) in zip(alone, workers):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
    assert sorted(torch.cat([y for _, y in alone]).tolist()) == [0] * 6 + [1] * 6
    # the same order without augmentation, different frames: the batches are augmented
    assert all(torch.equal(ya, yp) for (_, ya), (_, yp) in zip(alone, plain))
    assert any(not torch.equal(xa, xp) for (xa, _), (xp, _) in zip(alone, plain))


def test_two_ranks_read_disjoint_parts_that_make_the_one_process_batch(split_recordings):
    """Each rank's batches, built as under torchrun (no process group is needed to build them):
    the parts are disjoint halves that, side by side, are the one-process batch, augmentation
    included."""
    cpu = torch.device("cpu")
    whole = loader_batches(split_recordings)
    parts = [loader_batches(split_recordings, Ranks(r, 2, r, cpu)) for r in range(2)]
    assert len(whole) == len(parts[0]) == len(parts[1]) == 3
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *parts):
        assert len(y0) == len(y1) == len(y) // 2
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
