"""Locating a dataset folder under the user's ``data_dir``, with a one-line error when absent."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputNotFoundError

__all__ = ["find_folder"]


def find_folder(
    dataset: str,
    root: str | os.PathLike | None,
    folder: str | Sequence[str],
    required: Sequence[str],
    layout: str | None = None,
) -> Path:
    """The folder holding all ``required`` entries: ``root`` itself or ``root/<folder>``.

    ``folder`` may list several customary names (tried in order). Raises InputNotFoundError naming
    the dataset, the places looked at and the expected layout.
    """
    names = [folder] if isinstance(folder, str) else list(folder)
    if root is None:
        raise InputNotFoundError(
            f"{dataset}: no data_dir given; expected a folder containing "
            f"{layout or names[0] + '/' + ', '.join(required)}"
        )
    root = Path(root).expanduser()
    candidates = [root, *(root / name for name in names)]
    for candidate in candidates:
        if all((candidate / entry).exists() for entry in required):
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    expected = layout or f"{names[0]}/{{{', '.join(required)}}}"
    raise InputNotFoundError(
        f"{dataset}: dataset not found (looked in {looked}); expected layout: {expected}"
    )
