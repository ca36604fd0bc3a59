"""Datasets, event files and frames, augmentations.

Public names: :func:`read_events`, :func:`events_to_frames`, :func:`create_dataset`,
:func:`dataset_info`, :data:`DATASET_NAMES`, :class:`ResidentLoader`, and the AEDAT writers.
"""

from .aedat import read_events, write_aedat2, write_aedat31
from .batched import ResidentLoader
from .frames import events_to_counts, events_to_frames
from .registry import DATASET_NAMES, DatasetInfo, create_dataset, dataset_info

__all__ = [
    "read_events",
    "write_aedat31",
    "write_aedat2",
    "events_to_frames",
    "events_to_counts",
    "create_dataset",
    "dataset_info",
    "DatasetInfo",
    "DATASET_NAMES",
    "ResidentLoader",
]
