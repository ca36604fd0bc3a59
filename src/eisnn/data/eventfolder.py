"""``eventfolder``: event recordings sorted into class sub-folders, one recording per sample.

Layouts: those of :mod:`eisnn.data.folders` (``train/`` + ``val/`` with class folders, or class
folders with a seeded stratified split). A recording is any of:

- ``.aedat``: AEDAT 3.1 or 2.0 (:func:`eisnn.data.read_events`);
- ``.npy``: a structured array with fields ``t, x, y, p`` (as tonic saves events);
- ``.npz``: either one structured array as above, or the separate arrays ``t, x, y, p``;
- ``.h5`` / ``.hdf5``: datasets ``events/t, events/x, events/y, events/p`` (needs ``h5py``:
  ``pip install eisnn[h5]``).

``t`` is an integer time (microseconds; only its order and differences matter), ``x, y``
non-negative integer pixels, ``p`` the polarity: ``p > 0`` is ON (channel 1), anything else OFF
(channel 0), so 0/1, -1/+1 and booleans all work. Files with other suffixes (and hidden files)
are skipped, with one warning giving their count; a recording that cannot be read is an error
naming the file and the reason.

The sensor size is ``sensor_size: [H, W]`` or, when unset, ``(max y + 1, max x + 1)`` over the
training recordings (read once and remembered beside the frame cache). Frames ``[T, 2, H, W]``
are integrated at the sensor size and cached as for the DVS datasets (one file per sample, read
when the sample is: the split streams through DataLoader workers, indexed with per-sample seeds as
:mod:`eisnn.data.seeded` describes); the transforms resize them to ``image_size`` (square) when
it is set. A non-square sensor needs ``image_size``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..files import atomic_write
from .aedat import Events, make_events, read_events
from .events import EventFrameDataset, cached_frames, file_fingerprint
from .folders import DEFAULT_VAL_FRACTION, FolderSplit, scan_split
from .frames import events_to_counts

__all__ = [
    "NAME",
    "RECORDING_SUFFIXES",
    "EventFolderError",
    "read_recording",
    "scan_recordings",
    "sensor_size_of",
    "eventfolder_dataset",
]

NAME = "eventfolder"
FIELDS = ("t", "x", "y", "p")
RECORDING_SUFFIXES = (".aedat", ".npy", ".npz", ".h5", ".hdf5")
MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}  # a .npy header; a .npz is a zip archive


class EventFolderError(UserError, ValueError):
    """An event recording or folder that cannot be used (one line naming the file)."""


def _from_fields(path: Path, arrays: dict[str, np.ndarray]) -> Events:
    """Canonical events from named arrays, checking that all four fields are present and valid."""
    missing = [k for k in FIELDS if k not in arrays]
    if missing:
        raise EventFolderError(
            f"{path}: event array has no field {', '.join(missing)} "
            f"(needs {', '.join(FIELDS)}; has {', '.join(arrays) or 'none'})"
        )
    t, x, y, p = (np.asarray(arrays[k]).reshape(-1) for k in FIELDS)
    if not len(t) == len(x) == len(y) == len(p):
        raise EventFolderError(f"{path}: fields t, x, y, p differ in length")
    for key, values in (("t", t), ("x", x), ("y", y)):
        if values.dtype.kind not in "iu":
            raise EventFolderError(f"{path}: field {key} must hold integers, got {values.dtype}")
    if len(x) and (x.min() < 0 or y.min() < 0):
        raise EventFolderError(f"{path}: negative x or y coordinates")
    return make_events(t, x, y, (np.asarray(p) > 0).astype(np.uint8))


def _structured(path: Path, array: np.ndarray) -> Events:
    if array.dtype.names is None:
        raise EventFolderError(
            f"{path}: expected a structured array with fields {', '.join(FIELDS)}, "
            f"got a plain {array.dtype} array of shape {array.shape}"
        )
    return _from_fields(path, {name: array[name] for name in array.dtype.names})


def _read_npz(path: Path) -> Events:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if len(arrays) == 1:
        (only,) = arrays.values()
        if only.dtype.names is not None:
            return _structured(path, only)
    return _from_fields(path, arrays)


def _read_h5(path: Path) -> Events:
    try:
        import h5py
    except ImportError:
        raise EventFolderError(
            f"{path}: reading HDF5 needs h5py: pip install eisnn[h5] (or pip install h5py)"
        ) from None
    with h5py.File(path, "r") as file:
        group = file.get("events")
        if not isinstance(group, h5py.Group):
            raise EventFolderError(f"{path}: no 'events' group (expected events/t, x, y, p)")
        return _from_fields(path, {k: group[k][()] for k in group if k in FIELDS})


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as file:
        return file.read(len(magic)) == magic


def read_recording(path: str | os.PathLike) -> Events:
    """Events ``{t, x, y, p}`` of one recording in any format of the module docstring.

    Any failure raises :class:`EventFolderError` naming the file and the reason.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".aedat":
            return read_events(path)
        if suffix in MAGIC and not _starts_with(path, MAGIC[suffix]):
            raise EventFolderError(f"{path}: unreadable recording (not a NumPy {suffix} file)")
        if suffix == ".npy":
            return _structured(path, np.load(path, allow_pickle=False))
        if suffix == ".npz":
            return _read_npz(path)
        if suffix in (".h5", ".hdf5"):
            return _read_h5(path)
    except EventFolderError:
        raise
    except Exception as err:  # any reader's failure on a damaged file: name the file and why
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = reason.removeprefix(f"{path}: ")
        raise EventFolderError(f"{path}: unreadable recording ({reason})") from None
    raise EventFolderError(
        f"{path}: not an event recording (suffixes read: {', '.join(RECORDING_SUFFIXES)})"
    )


def scan_recordings(
    root: str | os.PathLike | None,
    train: bool,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
) -> FolderSplit:
    """The recordings and labels of one split of the event folder at ``root`` (no flat ``val/``:
    a recording has no ground-truth file format)."""
    return scan_split(root, train, RECORDING_SUFFIXES, val_fraction, split_seed, flat_val=False)


def _cache_root(split: FolderSplit, cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else split.root.parent / "eisnn_cache"


def _cache_name(split: FolderSplit) -> str:
    """The cache sub-folder: one per event folder, so two folders never evict each other."""
    return f"{NAME}-{split.root.name}"


def sensor_size_of(
    root: str | os.PathLike | None,
    sensor_size: Sequence[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
) -> tuple[int, int]:
    """``(H, W)``: ``sensor_size`` when given, else ``(max y + 1, max x + 1)`` over the training
    recordings, remembered in ``<cache>/<name>/sensor_size.json`` for the same files."""
    if sensor_size is not None:
        if len(sensor_size) != 2 or min(sensor_size) < 1:
            raise EventFolderError(f"{NAME}: sensor_size must be [H, W], got {sensor_size!r}")
        return int(sensor_size[0]), int(sensor_size[1])
    train = scan_recordings(root, True, val_fraction, split_seed)
    sources = file_fingerprint(train.root, train.paths())
    memo = _cache_root(train, cache_dir) / _cache_name(train) / "sensor_size.json"
    try:
        stored = json.loads(memo.read_text())
        if stored["sources"] == sources:
            return tuple(stored["sensor_size"])
    except (OSError, ValueError, KeyError):
        pass
    height = width = 0
    for path in train.paths():
        events = read_recording(path)
        if len(events["t"]):
            height = max(height, int(events["y"].max()) + 1)
            width = max(width, int(events["x"].max()) + 1)
    if height == 0:
        raise EventFolderError(f"{NAME}: the training recordings in {train.root} hold no event")
    memo.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"sources": sources, "sensor_size": [height, width]}).encode()
    atomic_write(memo, lambda f: f.write(text))
    return height, width


def input_side(size: tuple[int, int], image_size: int | None) -> int:
    """The square side networks see: ``image_size``, or the sensor's side when it is square."""
    if image_size is not None:
        return image_size
    if size[0] != size[1]:
        raise EventFolderError(
            f"{NAME}: the sensor is {size[0]}x{size[1]} (not square); set image_size to resize "
            f"the frames to a square input"
        )
    return size[0]


def _counts(path: Path, T: int, split_by: str, size: tuple[int, int]) -> np.ndarray:
    """Count frames of one recording; events outside the sensor are an error naming the file."""
    try:
        return events_to_counts(read_recording(path), T, split_by, size)
    except EventFolderError:
        raise
    except ValueError as err:
        raise EventFolderError(f"{path}: {err}; set sensor_size to the sensor's [H, W]") from None


def eventfolder_dataset(
    split: FolderSplit,
    train: bool,
    T: int,
    split_by: str,
    size: tuple[int, int],
    cache_dir: str | os.PathLike | None,
    transform: Callable[..., torch.Tensor],
) -> EventFrameDataset:
    """Read, integrate and cache (once per ``(T, split_by)``) the ``split`` (the training one if
    ``train``); ``transform(x, generator)`` is applied per sample, with per-sample seeds."""
    paths = split.paths()
    store = cached_frames(
        _cache_name(split),
        "train" if train else "val",
        T,
        split_by,
        size,
        _cache_root(split, cache_dir),
        file_fingerprint(split.root, paths) + [list(split.classes)],
        lambda: ((_counts(p, T, split_by, size), int(y)) for p, y in zip(paths, split.labels)),
        total=len(paths),
    )
    return EventFrameDataset(store, transform, per_sample_seeds=True)
