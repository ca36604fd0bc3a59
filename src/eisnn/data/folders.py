"""Labelled folders, for every dataset read from one (``imagefolder``, ``eventfolder``): classes as
sub-folders (torchvision's convention), the two layouts, the seeded stratified split and
ImageNet's flat validation folder with a ground-truth file.

Layouts of ``data_dir``:

- ``train/<class>/...`` and ``val/<class>/...`` (``val/`` may lack classes, not add one); where
  the caller allows it (``flat_val``), ``val/`` may instead be flat (the files themselves) with a
  ground-truth file (see :func:`read_ground_truth`);
- ``<class>/...`` only: a seeded split holds out ``val_fraction`` of every class
  (:func:`stratified_split`).

Class index = position of the folder name in the sorted list of ``train/``'s (or ``data_dir``'s)
sub-folders; hidden sub-folders (``.name``) are not classes. A file whose suffix is not one of the
accepted ``extensions``, or a hidden file, is skipped and counted (one warning names the count
and the first one); a class folder left empty is an error. Every error is a :class:`FolderError`
or an :class:`~eisnn.errors.InputNotFoundError`, one line naming the file or folder.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputNotFoundError, UserError

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "FolderError",
    "FolderSplit",
    "class_names",
    "scan_split",
    "stratified_split",
    "read_ground_truth",
    "GROUND_TRUTH_FILES",
]

# searched in val/, then in data_dir: Kaggle's ImageNet CSV, then "<file> <wnid or index>" lists
GROUND_TRUTH_FILES = ("LOC_val_solution.csv", "val.txt", "val_annotations.txt")


# the held-out share of every class in the one-folder layout (config key val_fraction)
DEFAULT_VAL_FRACTION = 0.1


class FolderError(UserError, ValueError):
    """A folder that does not hold labelled data as expected (one line naming the path)."""


@dataclass(frozen=True)
class FolderSplit:
    """One split: file paths relative to ``root``, the ``data_dir`` (as UTF-8 bytes, compact and
    shared copy-on-write by worker processes), their labels, and the class names."""

    root: Path
    files: np.ndarray  # dtype "S": relative paths
    labels: np.ndarray  # int64
    classes: tuple[str, ...]

    def path(self, index: int) -> Path:
        return self.root / self.files[index].decode()

    def paths(self) -> list[Path]:
        """Every file of the split, in order."""
        return [self.root / f.decode() for f in self.files]


def _subfolders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _layout(root: Path) -> tuple[Path, Path | None]:
    """``(train folder, val folder or None for the seeded split)``."""
    if not root.is_dir():
        raise InputNotFoundError(f"data_dir {root} is not a folder")
    train, val = root / "train", root / "val"
    if train.is_dir():
        if not val.is_dir():
            raise InputNotFoundError(
                f"{root}: has train/ but no val/; give both, or put the class folders directly in "
                "data_dir for a seeded split (val_fraction)"
            )
        return train, val
    return root, None


def class_names(root: str | os.PathLike) -> tuple[str, ...]:
    """The sorted class folder names of ``root/train`` (or of ``root`` without a train/val
    layout)."""
    train, _ = _layout(Path(root).expanduser())
    names = tuple(_subfolders(train))
    if not names:
        raise FolderError(f"{train}: no class sub-folders (expected <class>/<files>)")
    return names


def _class_files(folder: Path, extensions: Collection[str], skipped: list[Path]) -> list[str]:
    """Sorted names of the files in ``folder`` with one of ``extensions`` (lower case); hidden
    files and the others go to ``skipped``; an error if none is left."""
    names, other = [], []
    for entry in os.scandir(folder):
        if entry.is_file():
            suffix = os.path.splitext(entry.name)[1].lower()
            wanted = suffix in extensions and not entry.name.startswith(".")
            (names if wanted else other).append(entry.name)
    skipped += [folder / n for n in sorted(other)]
    if not names:
        raise FolderError(
            f"{folder}: empty class folder (holds no {'/'.join(sorted(extensions))} file)"
        )
    return sorted(names)


def _scan_classes(
    root: Path,
    folder: Path,
    classes: tuple[str, ...],
    extensions: Collection[str],
    skipped: list[Path],
) -> tuple[list[str], list[int]]:
    """The files (relative to ``root``) and labels of the class folders ``classes`` of
    ``folder``, class by class, each class's files sorted by name."""
    files, labels = [], []
    for label, name in enumerate(classes):
        prefix = (folder / name).relative_to(root).as_posix()
        names = _class_files(folder / name, extensions, skipped)
        files += [f"{prefix}/{n}" for n in names]
        labels += [label] * len(names)
    return files, labels


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out samples: in every class of ``n`` samples,
    ``round(val_fraction * n)`` of them (at least 1 and at most ``n - 1`` when ``n >= 2``), drawn
    by a permutation seeded by ``(seed, class)``; the same arguments always give the same mask."""
    held = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n = len(members)
        k = min(max(round(val_fraction * n), 1), n - 1) if n >= 2 else 0
        order = np.random.default_rng([seed, int(label)]).permutation(n)
        held[members[order[:k]]] = True
    return held


def _parse_ground_truth(path: Path, index: dict[str, int]) -> dict[str, int]:
    """``{file stem: label}`` from a ground-truth file. ``*.csv``: header ``ImageId,
    PredictionString``, the class is the first word of the prediction string (Kaggle's
    ``LOC_val_solution.csv``). Otherwise lines ``<file> <class>`` (whitespace, tab or comma
    separated) where the class is a folder name or a 0-based index into the sorted classes."""
    pairs: list[tuple[int, str, str]] = []
    with open(path, newline="") as f:
        if path.suffix.lower() == ".csv":
            rows = csv.reader(f)
            next(rows, None)
            pairs = [(n, r[0], (r[1].split() or [""])[0]) for n, r in enumerate(rows, 2) if r]
        else:
            for n, line in enumerate(f, 1):
                words = line.replace(",", " ").split()
                if words:
                    pairs.append((n, words[0], words[1] if len(words) > 1 else ""))
    truth = {}
    for n, name, label in pairs:
        if label in index:
            truth[Path(name).stem] = index[label]
        elif label.isdigit() and int(label) < len(index):
            truth[Path(name).stem] = int(label)
        else:
            raise FolderError(
                f"{path}: line {n}: class {label!r} of {name!r} is not a class folder of train/"
            )
    return truth


def read_ground_truth(
    val: Path, root: Path, classes: tuple[str, ...], extensions: Collection[str]
) -> tuple[list[str], list[int]]:
    """The files of a flat ``val/`` (names relative to it) and their labels from the first of
    :data:`GROUND_TRUTH_FILES` found in ``val/`` or ``root``; every file needs a label."""
    found = [d / n for n in GROUND_TRUTH_FILES for d in (val, root) if (d / n).is_file()]
    if not found:
        raise InputNotFoundError(
            f"{val}: holds files but no class folders, and no ground-truth file "
            f"({', '.join(GROUND_TRUTH_FILES)}) in it or in {root}"
        )
    truth = _parse_ground_truth(found[0], {c: i for i, c in enumerate(classes)})
    skipped: list[Path] = []
    names = _class_files(val, extensions, skipped)
    names = [n for n in names if val / n != found[0]]
    _warn_skipped([s for s in skipped if s != found[0]], extensions)
    missing = [n for n in names if Path(n).stem not in truth]
    if missing:
        raise FolderError(f"{val / missing[0]}: no label in {found[0]}")
    return names, [truth[Path(n).stem] for n in names]


def _warn_skipped(skipped: list[Path], extensions: Collection[str]) -> None:
    """One warning for the files a scan left out: their count and the first one."""
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} file(s) that are hidden or not "
            f"{'/'.join(sorted(extensions))} files by their suffix, e.g. {skipped[0]}",
            stacklevel=4,
        )


def _val_split(
    root: Path, val: Path, classes: tuple[str, ...], extensions: Collection[str], flat_val: bool
) -> FolderSplit:
    """``val/`` with class folders (each one a class of ``train/``) or, if ``flat_val``, flat
    with ground truth."""
    names = _subfolders(val)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise FolderError(
            f"{val / unknown[0]}: class {unknown[0]!r} is not a class folder of train/"
        )
    if names:
        skipped: list[Path] = []
        present = tuple(c for c in classes if c in names)
        files, labels = _scan_classes(root, val, present, extensions, skipped)
        remap = np.array([classes.index(c) for c in present], dtype=np.int64)
        _warn_skipped(skipped, extensions)
        return FolderSplit(root, np.array(files, dtype="S"), remap[labels], classes)
    if not flat_val:
        raise FolderError(f"{val}: no class sub-folders (expected val/<class>/<files>)")
    files, labels = read_ground_truth(val, root, classes, extensions)
    files = [f"{val.name}/{n}" for n in files]
    return FolderSplit(root, np.array(files, dtype="S"), np.array(labels, dtype=np.int64), classes)


def scan_split(
    root: str | os.PathLike | None,
    train: bool,
    extensions: Collection[str],
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
    flat_val: bool = True,
) -> FolderSplit:
    """The train or validation split of the labelled folder ``root`` (layouts in the module
    docstring): the files whose suffix is one of ``extensions`` (any case); with the seeded split,
    ``val_fraction`` of each class is held out; ``flat_val`` allows a flat ``val/`` labelled by a
    ground-truth file."""
    if root is None:
        raise InputNotFoundError("no data_dir given; expected a folder of class folders")
    if not 0 < val_fraction < 1:
        raise FolderError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    root = Path(root).expanduser()
    extensions = frozenset(e.lower() for e in extensions)
    train_dir, val_dir = _layout(root)
    classes = class_names(root)
    if val_dir is not None and not train:
        return _val_split(root, val_dir, classes, extensions, flat_val)
    skipped: list[Path] = []
    files, labels = _scan_classes(root, train_dir, classes, extensions, skipped)
    _warn_skipped(skipped, extensions)
    files_a, labels_a = np.array(files, dtype="S"), np.array(labels, dtype=np.int64)
    if val_dir is not None:
        return FolderSplit(root, files_a, labels_a, classes)
    keep = stratified_split(labels_a, val_fraction, split_seed) != train
    if not keep.any():
        raise FolderError(
            f"{root}: the seeded split leaves no validation file (every class holds one file)"
        )
    return FolderSplit(root, files_a[keep], labels_a[keep], classes)
