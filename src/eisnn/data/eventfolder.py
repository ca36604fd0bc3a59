"""``eventfolder``: event recordings sorted into class sub-folders, one recording per sample.

Layouts: those of :mod:`eisnn.data.class_folders` (``train/`` + ``val/``, or class folders
with a seeded stratified split). A recording is any of:

- ``.aedat``: AEDAT 3.1 or 2.0 (:func:`eisnn.data.read_events`);
- ``.npy``: a structured array with fields ``t, x, y, p`` (as tonic saves events);
- ``.npz``: either one structured array as above, or the separate arrays ``t, x, y, p``;
- ``.h5`` / ``.hdf5``: datasets ``events/t, events/x, events/y, events/p`` (needs ``h5py``:
  ``pip install eisnn[h5]``).

``t`` is an integer time (microseconds; only its order and differences matter), ``x, y``
non-negative integer pixels, ``p`` the polarity: ``p > 0`` is ON (channel 1), anything else OFF
(channel 0), so 0/1, -1/+1 and booleans all work. Files with other suffixes are ignored; a
recording that cannot be read is an error naming the file and the reason.

The sensor size is ``sensor_size: [H, W]`` or, when unset, ``(max y + 1, max x + 1)`` over the
training recordings (read once and remembered beside the frame cache). Frames ``[T, 2, H, W]``
are integrated at the sensor size and cached as for the DVS datasets; the transforms resize them
to ``image_size`` (square) when it is set. A non-square sensor needs ``image_size``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import atomic_write
from .aedat import Events, make_events, read_events
from .class_folders import DEFAULT_VAL_FRACTION, ClassFolders, class_folders
from .events import EventFrameDataset, cached_frames, file_fingerprint
from .frames import events_to_counts

__all__ = [
    "NAME",
    "RECORDING_SUFFIXES",
    "EventFolderError",
    "read_recording",
    "event_folders",
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


def event_folders(
    root: str | os.PathLike | None, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> ClassFolders:
    """The classes and split files of the event folder at ``root``."""
    return class_folders(NAME, root, RECORDING_SUFFIXES, val_fraction, seed)


def _cache_root(folders: ClassFolders, cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else folders.root.parent / "eisnn_cache"


def _cache_name(folders: ClassFolders) -> str:
    """The cache sub-folder: one per event folder, so two folders never evict each other."""
    return f"{NAME}-{folders.root.name}"


def sensor_size_of(
    folders: ClassFolders,
    sensor_size: Sequence[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[int, int]:
    """``(H, W)``: ``sensor_size`` when given, else ``(max y + 1, max x + 1)`` over the training
    recordings, remembered in ``<cache>/<name>/sensor_size.json`` for the same files."""
    if sensor_size is not None:
        if len(sensor_size) != 2 or min(sensor_size) < 1:
            raise EventFolderError(f"{NAME}: sensor_size must be [H, W], got {sensor_size!r}")
        return int(sensor_size[0]), int(sensor_size[1])
    sources = file_fingerprint(folders.root, (p for p, _ in folders.train))
    memo = _cache_root(folders, cache_dir) / _cache_name(folders) / "sensor_size.json"
    try:
        stored = json.loads(memo.read_text())
        if stored["sources"] == sources:
            return tuple(stored["sensor_size"])
    except (OSError, ValueError, KeyError):
        pass
    height = width = 0
    for path, _ in folders.train:
        events = read_recording(path)
        if len(events["t"]):
            height = max(height, int(events["y"].max()) + 1)
            width = max(width, int(events["x"].max()) + 1)
    if height == 0:
        raise EventFolderError(f"{NAME}: the training recordings in {folders.root} hold no event")
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
    folders: ClassFolders,
    train: bool,
    T: int,
    split_by: str,
    size: tuple[int, int],
    cache_dir: str | os.PathLike | None,
    transform,
) -> EventFrameDataset:
    """Read, integrate and cache (once per ``(T, split_by)``) one split of ``folders``."""
    files = folders.split(train)
    if not files:
        raise EventFolderError(f"{NAME}: {folders.root} leaves no file for the validation split")
    store = cached_frames(
        _cache_name(folders),
        "train" if train else "val",
        T,
        split_by,
        size,
        _cache_root(folders, cache_dir),
        file_fingerprint(folders.root, (p for p, _ in files)) + [list(folders.classes)],
        lambda: ((_counts(p, T, split_by, size), label) for p, label in files),
        total=len(files),
    )
    return EventFrameDataset(store, transform)
