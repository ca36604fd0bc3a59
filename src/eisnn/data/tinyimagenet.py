"""TinyImageNet-200 from its downloaded folder.

``tiny-imagenet-200/``: ``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (tab-separated: file, wnid, 4 box ints). Images are 64x64 JPEGs, a
few greyscale (converted to RGB). Class index = position of the wnid in the sorted wnid list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import InputNotFoundError
from .layout import find_folder
from .transforms import tinyimagenet_eval, tinyimagenet_train

__all__ = ["TinyImageNet", "read_image"]

LAYOUT = (
    "tiny-imagenet-200/{wnids.txt, train/<wnid>/images/<wnid>_<k>.JPEG, "
    "val/images/val_<k>.JPEG, val/val_annotations.txt}"
)


def read_image(path: Path) -> torch.Tensor:
    """Decode an image file to uint8 RGB ``[3, H, W]``."""
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise ValueError(f"{path}: unreadable image ({err})") from err
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)


def _train_samples(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    samples = []
    for label, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        if not images.is_dir():
            raise InputNotFoundError(
                f"tinyimagenet: missing class folder {images}; expected layout: {LAYOUT}"
            )
        files = sorted(p for p in images.iterdir() if p.suffix.lower() == ".jpeg")
        samples += [(p, label) for p in files]
    return samples


def _val_samples(folder: Path, index: dict[str, int]) -> list[tuple[Path, int]]:
    annotations = folder / "val" / "val_annotations.txt"
    samples = []
    for row, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise ValueError(
                f"{annotations}: line {row} is not '<file>\\t<known wnid>\\t...': {line!r}"
            )
        samples.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    return samples


class TinyImageNet(Dataset):
    """TinyImageNet-200 train or val split; ``x`` is float32 ``[3, size, size]`` in [0, 1]."""

    def __init__(self, root: str | Path, train: bool, augment: bool = True, image_size: int = 32):
        folder = find_folder(
            "tinyimagenet",
            root,
            "tiny-imagenet-200",
            ["wnids.txt", "train", "val/val_annotations.txt"],
            LAYOUT,
        )
        self.classes = sorted(
            w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()
        )
        index = {w: i for i, w in enumerate(self.classes)}
        self.samples = (
            _train_samples(folder, self.classes) if train else _val_samples(folder, index)
        )
        self.labels = torch.tensor([label for _, label in self.samples], dtype=torch.long)
        self.train_augment = augment and train
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        x = read_image(path).float().div_(255.0)[None]
        if self.train_augment:
            x = tinyimagenet_train(x, None, self.image_size)
        else:
            x = tinyimagenet_eval(x, self.image_size)
        return x[0], label
