"""DVS128 Gesture (AEDAT 3.1 recordings + label CSVs + trial lists), segmented as the paper did.

Folder: ``userNN_<lighting>.aedat`` with ``userNN_<lighting>_labels.csv`` beside each (header
``class,startTime_usec,endTime_usec``, classes 1..C), ``trials_to_train.txt`` and
``trials_to_test.txt``. For each listed trial and each label row, the events with
``start <= t < end`` are one sample with label ``class - 1`` (overlapping or repeated rows are
each kept): 1176 train and 288 test samples for the real dataset. The same code reads the
emulated digits recordings (:mod:`eisnn.data.emulator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputNotFoundError
from .aedat import read_events
from .events import EventFrameDataset, cached_frames, file_fingerprint
from .frames import events_to_counts
from .layout import find_folder

__all__ = [
    "SegmentedLayout",
    "GESTURE",
    "read_trial_list",
    "read_label_rows",
    "segment_recording",
    "segmented_samples",
    "segmented_dataset",
    "PAPER_GESTURE_ORDER",
]

CSV_HEADER = "class,startTime_usec,endTime_usec"
# The paper's checkpoints index Gesture classes by the string sort of "0".."10" ("10" is index 2).
PAPER_GESTURE_ORDER = [sorted(str(c) for c in range(11)).index(str(c)) for c in range(11)]


@dataclass(frozen=True)
class SegmentedLayout:
    """A folder of labelled recordings split by trial lists."""

    name: str
    folders: tuple[str, ...]
    sensor_size: tuple[int, int]
    num_classes: int

    @property
    def description(self) -> str:
        return (
            f"{self.folders[0]}/{{trials_to_train.txt, trials_to_test.txt, "
            f"<trial>.aedat (AEDAT 3.1), <trial>_labels.csv ({CSV_HEADER})}}"
        )


GESTURE = SegmentedLayout("dvs128_gesture", ("DvsGesture", "extract/DvsGesture"), (128, 128), 11)


def read_trial_list(path: Path) -> list[str]:
    """Trial file names listed one per line (blank lines ignored)."""
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: trial list is empty")
    return names


def read_label_rows(path: Path, num_classes: int) -> list[tuple[int, int, int]]:
    """``(class, start_us, end_us)`` rows of a label CSV, validated."""
    if not path.is_file():
        raise InputNotFoundError(f"missing label file {path} (expected beside its recording)")
    lines = path.read_text().splitlines()
    if not lines or lines[0].strip().replace(" ", "") != CSV_HEADER:
        raise ValueError(f"{path}: first line must be '{CSV_HEADER}'")
    rows = []
    for number, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        try:
            cls, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise ValueError(f"{path}: row {number} is not three integers: {line!r}") from None
        if not 1 <= cls <= num_classes or end <= start:
            raise ValueError(
                f"{path}: row {number} invalid "
                f"(class {cls} not in 1..{num_classes} or end {end} <= start {start})"
            )
        rows.append((cls, start, end))
    return rows


def segment_recording(
    events: dict[str, np.ndarray],
    rows: list[tuple[int, int, int]],
    csv_path: Path,
    aedat_path: Path,
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """One ``(events with start <= t < end, class - 1)`` per label row.

    A row whose window holds no event of the recording is an error (it would silently become
    an empty sample).
    """
    t = events["t"]
    if np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        events = {k: v[order] for k, v in events.items()}
        t = events["t"]
    span = f"events from {t[0]} to {t[-1]} us" if len(t) else "no events"
    for number, (cls, start, end) in enumerate(rows, start=1):
        lo, hi = np.searchsorted(t, [start, end], side="left")
        if hi == lo:
            raise ValueError(
                f"{csv_path}: row {number} (class {cls}, {start}-{end} us) "
                f"lies outside the recording {aedat_path.name} ({span})"
            )
        yield {k: v[lo:hi] for k, v in events.items()}, cls - 1


def segmented_samples(
    folder: Path, trials: list[str], layout: SegmentedLayout, T: int, split_by: str
) -> Iterator[tuple[np.ndarray, int]]:
    """Integer count frames and label of every labelled segment of the listed trials."""
    for trial in trials:
        aedat = folder / trial
        csv = aedat.with_name(aedat.stem + "_labels.csv")
        rows = read_label_rows(csv, layout.num_classes)
        for sample, label in segment_recording(read_events(aedat), rows, csv, aedat):
            yield events_to_counts(sample, T, split_by, layout.sensor_size), label


def segmented_dataset(
    layout: SegmentedLayout,
    root: str | Path,
    train: bool,
    T: int,
    split_by: str,
    cache_dir: str | Path | None,
    transform,
    label_map=None,
) -> EventFrameDataset:
    """Parse, segment, integrate and cache (once per ``(T, split_by)``) one split of ``layout``."""
    folder = find_folder(
        layout.name,
        root,
        layout.folders,
        ["trials_to_train.txt", "trials_to_test.txt"],
        layout.description,
    )
    split = "train" if train else "test"
    trial_list = folder / f"trials_to_{split}.txt"
    trials = read_trial_list(trial_list)
    sources = []
    for trial in trials:
        aedat = folder / trial
        for path in (aedat, aedat.with_name(aedat.stem + "_labels.csv")):
            if not path.is_file():
                raise InputNotFoundError(
                    f"{layout.name}: {path} (trial {trial!r} of "
                    f"{trial_list.name}) is missing; expected layout: "
                    f"{layout.description}"
                )
            sources.append(path)
    cache_root = Path(cache_dir) if cache_dir is not None else folder.parent / "eisnn_cache"
    store = cached_frames(
        layout.name,
        split,
        T,
        split_by,
        layout.sensor_size,
        cache_root,
        file_fingerprint(folder, sources),
        lambda: segmented_samples(folder, trials, layout, T, split_by),
    )
    return EventFrameDataset(store, transform, label_map)
