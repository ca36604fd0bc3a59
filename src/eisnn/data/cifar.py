"""CIFAR-10 / CIFAR-100, python version, read from the pickles as downloaded.

``cifar-10-batches-py/``: ``data_batch_1..5``, ``test_batch``, ``batches.meta``;
``cifar-100-python/``: ``train``, ``test``, ``meta``. Each batch is a pickle of a dict with
``data`` uint8 ``(N, 3072)`` (1024 R, 1024 G, 1024 B, each 32x32 row-major) and ``labels``
(CIFAR-10) or ``fine_labels`` (CIFAR-100).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .images import ImageTensorDataset
from .layout import find_folder
from .transforms import cifar_train

__all__ = ["read_cifar", "cifar_dataset"]

LAYOUTS = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        meta="batches.meta",
        labels="labels",
        names="label_names",
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        meta="meta",
        labels="fine_labels",
        names="fine_label_names",
    ),
}


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{path}: not a readable CIFAR pickle ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _load_pickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise ValueError(f"{path}: CIFAR pickle has no {key!r} entry (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {len(labels)} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(
    name: str, root: str | Path, train: bool
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``(images uint8 [N, 3, 32, 32], labels int64 [N], class names)`` of one split."""
    layout = LAYOUTS[name]
    files = layout["train"] if train else layout["test"]
    folder = find_folder(name, root, layout["folder"], [*files, layout["meta"]])
    parts = [_read_batch(folder / f, layout["labels"]) for f in files]
    names = list(_load_pickle(folder / layout["meta"]).get(layout["names"], []))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    num_classes = 10 if name == "cifar10" else 100
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"{folder}: labels outside 0..{num_classes - 1} "
            f"(min {labels.min()}, max {labels.max()})"
        )
    return torch.from_numpy(images), torch.from_numpy(labels), names


def cifar_dataset(name: str, root: str | Path, train: bool, augment: bool) -> ImageTensorDataset:
    images, labels, names = read_cifar(name, root, train)
    return ImageTensorDataset(images, labels, cifar_train, augment and train, names)
