"""Datasets laid out as class sub-folders (torchvision's convention), with or without a split.

Two layouts of ``root``:

- ``train/<class>/*`` and ``val/<class>/*``: the splits as given. A class in ``val/`` must also
  be in ``train/``; a class of ``train/`` may be absent from ``val/``.
- ``<class>/*`` only: a seeded, stratified split. Per class, the files sorted by name are
  permuted by ``numpy.random.default_rng([seed, class index])`` and the first
  ``n_val = min(n - 1, max(1, round(val_fraction * n)))`` are held out (none when ``n == 1``), so
  every class keeps at least one training file.

Class indices follow the sorted class-folder names (of ``train/`` in the first layout). Hidden
entries (names starting with ``.``) are ignored, as are files whose suffix is not listed; a
class folder holding no listed file is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputNotFoundError, UserError

__all__ = ["ClassFolderError", "ClassFolders", "class_folders", "DEFAULT_VAL_FRACTION"]

DEFAULT_VAL_FRACTION = 0.1


class ClassFolderError(UserError, ValueError):
    """A class-folder dataset whose layout is wrong (one line naming the folder)."""


@dataclass(frozen=True)
class ClassFolders:
    """The classes of a class-folder dataset and the ``(file, class index)`` pairs of each split."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[tuple[Path, int], ...]
    val: tuple[tuple[Path, int], ...]

    def split(self, train: bool) -> tuple[tuple[Path, int], ...]:
        return self.train if train else self.val


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _class_files(dataset: str, folder: Path, suffixes: Sequence[str]) -> dict[str, list[Path]]:
    """Sorted files with one of ``suffixes`` (case-insensitive) of every class sub-folder."""
    classes = _subfolders(folder)
    if not classes:
        raise ClassFolderError(f"{dataset}: {folder} has no class sub-folders")
    wanted = {s.lower() for s in suffixes}
    files = {}
    for cls in classes:
        found = sorted(
            (
                p
                for p in cls.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in wanted
            ),
            key=lambda p: p.name,
        )
        if not found:
            raise ClassFolderError(
                f"{dataset}: class folder {cls} holds no {'/'.join(sorted(wanted))} file"
            )
        files[cls.name] = found
    return files


def _stratified(
    files: dict[str, list[Path]], val_fraction: float, seed: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """The seeded per-class split of the module docstring."""
    train, val = [], []
    for label, name in enumerate(files):
        paths = files[name]
        n = len(paths)
        n_val = 0 if n < 2 else min(n - 1, max(1, round(val_fraction * n)))
        order = np.random.default_rng([seed, label]).permutation(n)
        val += [(paths[i], label) for i in sorted(order[:n_val])]
        train += [(paths[i], label) for i in sorted(order[n_val:])]
    return train, val


def class_folders(
    dataset: str,
    root: str | os.PathLike | None,
    suffixes: Sequence[str],
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
) -> ClassFolders:
    """Classes and splits of the class-folder dataset at ``root`` (either layout above)."""
    if root is None:
        raise InputNotFoundError(
            f"{dataset}: no data_dir given; expected a folder of class folders"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputNotFoundError(f"{dataset}: data_dir {root} is not a folder")
    if not 0 < val_fraction < 1:
        raise ClassFolderError(f"{dataset}: val_fraction must be in (0, 1), got {val_fraction!r}")
    if (root / "train").is_dir():
        if not (root / "val").is_dir():
            raise InputNotFoundError(f"{dataset}: {root} has train/ but no val/ folder")
        train_files = _class_files(dataset, root / "train", suffixes)
        val_files = _class_files(dataset, root / "val", suffixes)
        classes = list(train_files)
        for name in val_files:
            if name not in train_files:
                raise ClassFolderError(
                    f"{dataset}: class {name!r} of {root / 'val'} is not in {root / 'train'}"
                )
        index = {name: i for i, name in enumerate(classes)}
        train = [(p, index[name]) for name, paths in train_files.items() for p in paths]
        val = [(p, index[name]) for name, paths in val_files.items() for p in paths]
    else:
        files = _class_files(dataset, root, suffixes)
        classes = list(files)
        train, val = _stratified(files, val_fraction, seed)
    return ClassFolders(root, tuple(classes), tuple(train), tuple(val))
