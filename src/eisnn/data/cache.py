"""On-disk cache of integrated event frames, one folder per ``(dataset, split, T, split_by)``.

Layout: ``<cache_root>/<dataset>/<split>_T<T>_<split_by>/`` holding ``meta.json`` (the key it was
built for, the labels) and one ``<index>.npy`` per sample with its integer counts
``[T, 2, H, W]`` in the smallest unsigned dtype that holds its maximum. A folder is built under
a temporary name and renamed into place when complete, so a crash never leaves a half cache;
a folder whose key differs from the requested one (another T, other source files) is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

__all__ = ["FrameStore", "compact_dtype", "frame_cache_dir", "load_or_build"]

FORMAT_VERSION = 1


def compact_dtype(max_count: int) -> np.dtype:
    """Smallest unsigned integer dtype holding ``max_count``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_count <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def frame_cache_dir(
    cache_root: str | os.PathLike, dataset: str, split: str, T: int, split_by: str
) -> Path:
    """The cache folder of one ``(dataset, split, T, split_by)``."""
    return Path(cache_root) / dataset / f"{split}_T{T}_{split_by}"


class FrameStore:
    """Read access to a complete cache folder: ``store[i]`` is the integer count array of
    sample i."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        meta = json.loads((self.directory / "meta.json").read_text())
        self.key: dict[str, Any] = meta["key"]
        self.labels = np.asarray(meta["labels"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.directory / f"{index}.npy"
        try:
            return np.load(path)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"{path}: unreadable frame cache entry ({err}); delete {self.directory} to rebuild"
            ) from err


def _stored_key(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "meta.json").read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def load_or_build(
    directory: str | os.PathLike,
    key: dict[str, Any],
    samples: Iterable[tuple[np.ndarray, int]],
    total: int | None = None,
) -> FrameStore:
    """Open the cache at ``directory`` if it was built for ``key``, else build it from ``samples``.

    ``samples`` yields ``(counts [T, 2, H, W] integer array, label)``; it is only consumed
    when building. ``key`` must be JSON-serialisable.
    """
    directory = Path(directory)
    key = {"format": FORMAT_VERSION, **key}
    if _stored_key(directory) == key:
        return FrameStore(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.building{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    labels = []
    try:
        for index, (counts, label) in enumerate(
            tqdm(
                samples, total=total, desc=f"caching {directory.name}", leave=False, mininterval=2.0
            )
        ):
            np.save(tmp / f"{index}.npy", counts.astype(compact_dtype(int(counts.max(initial=0)))))
            labels.append(int(label))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / "meta.json").write_text(json.dumps({"key": key, "labels": labels}))
    if directory.exists():
        stale = directory.with_name(f".{directory.name}.stale{os.getpid()}")
        os.replace(directory, stale)
        shutil.rmtree(stale)
    os.replace(tmp, directory)
    return FrameStore(directory)
