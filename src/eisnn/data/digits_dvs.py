"""``digits_dvs``: scikit-learn's digits seen by the emulated DVS, an offline event dataset.

On first use the emulator (:mod:`eisnn.data.emulator`) writes ``<root>/digits_dvs/`` in the
DVS128 Gesture layout: ``train<r>_emulated.aedat`` / ``test<r>_emulated.aedat`` (AEDAT 3.1,
20 digits per recording, 32x32 sensor), a ``_labels.csv`` beside each and
``trials_to_train.txt`` / ``trials_to_test.txt`` (the fixed digits split: 1437 / 360 samples).
From there it goes through the same parse / segment / integrate / cache path as the real data.
"""

from __future__ import annotations

import os
from pathlib import Path

from .digits import digits_split
from .emulator import EmulatorConfig, emulate_events, write_segmented_recordings
from .events import EventFrameDataset
from .gesture import SegmentedLayout, segmented_dataset

__all__ = ["DIGITS_DVS", "ensure_recordings", "digits_dvs_dataset", "DEFAULT_ROOT"]

CONFIG = EmulatorConfig(sensor_size=32)
DIGITS_DVS = SegmentedLayout(
    "digits_dvs", ("digits_dvs",), (CONFIG.sensor_size, CONFIG.sensor_size), 10
)
DEFAULT_ROOT = Path(os.path.expanduser("~/.cache/eisnn"))
SEEDS = {"train": 1, "test": 2}


def ensure_recordings(root: str | os.PathLike | None) -> Path:
    """The recordings folder under ``root`` (default ``~/.cache/eisnn``), generated when missing."""
    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    folder = root / DIGITS_DVS.folders[0]
    if not (folder / "trials_to_train.txt").is_file():
        splits = {}
        for split, seed in SEEDS.items():
            images, labels = digits_split(split == "train")
            splits[split] = (emulate_events(images, seed=seed, config=CONFIG), labels)
        write_segmented_recordings(folder, splits)
    return folder


def digits_dvs_dataset(
    root: str | os.PathLike | None,
    train: bool,
    T: int,
    split_by: str,
    cache_dir: str | os.PathLike | None,
    transform,
) -> EventFrameDataset:
    folder = ensure_recordings(root)
    return segmented_dataset(DIGITS_DVS, folder, train, T, split_by, cache_dir, transform)
