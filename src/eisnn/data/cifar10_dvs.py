"""CIFAR10-DVS, original release: ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0), 10 classes.

There is no official split. The paper's: per class, files sorted by name as strings
(``_0, _1, _10, _100, ...``), the first 90% train, the rest test (``i`` in 91..99 and 909..999
for 1000 files per class).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputNotFoundError
from .aedat import DVS128_SIZE, read_events
from .events import EventFrameDataset, cached_frames, file_fingerprint
from .frames import events_to_counts
from .layout import find_folder

__all__ = ["CLASSES", "split_files", "cifar10_dvs_dataset"]

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_RATIO = 0.9
NAME = "cifar10_dvs"
LAYOUT = "CIFAR10-DVS/{airplane, automobile, ..., truck}/cifar10_<class>_<i>.aedat (AEDAT 2.0)"


def split_files(
    folder: Path, train: bool, train_ratio: float = TRAIN_RATIO
) -> list[tuple[Path, int]]:
    """``(file, class index)`` of one split: per class, the first ``int(ratio * n)`` names in
    string order train."""
    samples = []
    for label, name in enumerate(CLASSES):
        files = sorted(
            (p for p in (folder / name).iterdir() if p.suffix == ".aedat"), key=lambda p: p.name
        )
        if not files:
            raise InputNotFoundError(
                f"{NAME}: no .aedat files in {folder / name}; expected layout: {LAYOUT}"
            )
        cut = int(train_ratio * len(files))
        samples += [(p, label) for p in (files[:cut] if train else files[cut:])]
    return samples


def cifar10_dvs_dataset(
    root: str | Path, train: bool, T: int, split_by: str, cache_dir: str | Path | None, transform
) -> EventFrameDataset:
    """Parse, integrate and cache (once per ``(T, split_by)``) one split."""
    folder = find_folder(
        NAME, root, ("CIFAR10-DVS", "cifar10_dvs", "CIFAR10DVS", "extract"), CLASSES, LAYOUT
    )
    files = split_files(folder, train)
    size = (DVS128_SIZE, DVS128_SIZE)
    cache_root = Path(cache_dir) if cache_dir is not None else folder.parent / "eisnn_cache"
    store = cached_frames(
        NAME,
        "train" if train else "test",
        T,
        split_by,
        size,
        cache_root,
        file_fingerprint(folder, (p for p, _ in files)),
        lambda: (
            (events_to_counts(read_events(p), T, split_by, size), label) for p, label in files
        ),
        total=len(files),
    )
    return EventFrameDataset(store, transform)
