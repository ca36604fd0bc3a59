"""A torch Dataset over cached event frames, with the paper's per-sample transform."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import FrameStore, frame_cache_dir, load_or_build
from .frames import SPLIT_MODES
from .seeded import sample_generator

__all__ = ["EventFrameDataset", "cached_frames", "file_fingerprint"]


def file_fingerprint(folder: Path, files: Iterable[Path]) -> list[list]:
    """``[relative path, size in bytes]`` of each source file: part of a cache key."""
    return [[str(Path(f).relative_to(folder)), os.path.getsize(f)] for f in files]


def cached_frames(
    dataset: str,
    split: str,
    T: int,
    split_by: str,
    size: Sequence[int],
    cache_root: Path,
    sources: list[list],
    samples: Callable[[], Iterable[tuple[np.ndarray, int]]],
    total: int | None = None,
) -> FrameStore:
    """The frame cache of one split, built from ``samples()`` unless a matching one exists."""
    if split_by not in SPLIT_MODES:
        raise ValueError(f"{dataset}: split_by must be one of {SPLIT_MODES}, got {split_by!r}")
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"{dataset}: T must be a positive integer, got {T!r}")
    key = {
        "dataset": dataset,
        "split": split,
        "T": T,
        "split_by": split_by,
        "size": list(size),
        "sources": sources,
    }
    directory = frame_cache_dir(cache_root, dataset, split, T, split_by)
    return load_or_build(directory, key, _lazy(samples), total)


def _lazy(samples: Callable[[], Iterable]) -> Iterable:
    yield from samples()


class EventFrameDataset(Dataset):
    """``(x float32 [T, 2, H', W'], label)`` from a frame cache (one file per sample, read when
    the sample is), ``transform`` applied per sample.

    With ``per_sample_seeds`` the loader indexes it with ``(index, base)`` pairs
    (:class:`~eisnn.data.seeded.SeededBatchSampler`) and ``transform(x, generator)`` draws from
    :func:`~eisnn.data.seeded.sample_generator` ``(base, index)`` (from torch's global RNG when
    indexed with ``index`` alone); otherwise ``transform(x)`` draws from torch's global RNG."""

    def __init__(
        self,
        store: FrameStore,
        transform: Callable[..., torch.Tensor] | None,
        label_map: Sequence[int] | None = None,
        per_sample_seeds: bool = False,
    ):
        self.store = store
        self.transform = transform
        self.per_sample_seeds = per_sample_seeds
        labels = store.labels if label_map is None else np.asarray(label_map)[store.labels]
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, generator = key, None
        if isinstance(key, tuple):
            index, base = key
            generator = sample_generator(base, index)
        x = torch.from_numpy(self.store[index].astype(np.float32))
        if self.transform is not None:
            seeds = (generator,) if self.per_sample_seeds else ()
            x = self.transform(x[None], *seeds)[0]
        return x, int(self.labels[index])
