"""A folder of labelled images (JPEG, PNG, WebP; any size, any number of classes), decoded one
sample at a time (in DataLoader workers), never held in memory as a whole.

Layouts: see :mod:`eisnn.data.folders`. Every image is converted to RGB.

- Training (``augment``): random resized crop to ``image_size`` (area ``U(crop_scale)`` of the
  image, aspect ``U(3/4, 4/3)`` log-uniform, :func:`~eisnn.data.augment.resized_crop_params`),
  bilinear antialiased resize (Pillow), horizontal flip with p 0.5, optional colour jitter
  ``(brightness, contrast, saturation, hue)`` (:func:`~eisnn.data.color.color_jitter`).
- Evaluation: resize the shorter side to ``image_size / eval_crop`` (224 / 0.875 = 256), then the
  central ``image_size`` square.
- ``x`` is float32 ``[3, image_size, image_size]`` in [0, 1]; with ``mean`` and ``std`` given,
  ``(x - mean) / std`` per channel (negative values: not for E-I models, whose inputs must be
  non-negative).

A JPEG is decoded at the smallest of its 1/1, 1/2, 1/4, 1/8 scales that still leaves the crop at
least ``image_size`` pixels on each side (``PIL.Image.draft``), which is where most decode time
goes for large photographs.

Reproducible randomness: indexed with ``(index, base)`` from
:class:`~eisnn.data.seeded.SeededBatchSampler`, a sample's random draws come from
:func:`~eisnn.data.seeded.sample_generator`; so the batches do not depend on the worker count,
and under ``torchrun`` a sample is augmented the same way whichever rank reads it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import UserError
from .augment import random_hflip, resized_crop_params
from .color import color_jitter
from .folders import DEFAULT_VAL_FRACTION, FolderSplit, scan_split
from .seeded import sample_generator

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "Preprocessing",
    "ImageFolder",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})


class ImageReadError(UserError, ValueError):
    """An image file that cannot be decoded (one line naming the file and Pillow's reason).

    A DataLoader worker re-raises it in the main process as ``ImageReadError(text)`` where
    ``text`` is ``"Caught ImageReadError in DataLoader worker ...\\n<traceback>"``: the last line
    of that traceback, ``"<module>.ImageReadError: <message>"``, gives the message back.
    """

    def __init__(self, message: str) -> None:
        if "\n" in message:
            message = message.rstrip().splitlines()[-1].split(": ", 1)[-1]
        super().__init__(message)


@dataclass(frozen=True)
class Preprocessing:
    """What :class:`ImageFolder` does to a decoded image (see the module docstring)."""

    image_size: int = 224
    augment: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)
    eval_crop: float = 0.875
    color_jitter: tuple[float, float, float, float] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    draft: bool = True

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must be 0 < min <= max <= 1, got {self.crop_scale}")
        if not 0 < self.eval_crop <= 1:
            raise ValueError(f"eval_crop must be in (0, 1], got {self.eval_crop}")
        if self.color_jitter is not None and len(self.color_jitter) != 4:
            raise ValueError(
                "color_jitter takes 4 numbers (brightness, contrast, saturation, hue), "
                f"got {list(self.color_jitter)}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together: give both or neither")
        if self.mean is not None and (len(self.mean) != 3 or len(self.std) != 3):
            raise ValueError(f"mean and std take 3 numbers (R, G, B), got {self.mean}, {self.std}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {list(self.std)}")


def _draft(img: Image.Image, box: tuple[float, float, float, float], size: int) -> tuple:
    """Let a JPEG decode at a reduced scale that keeps the ``box`` (left, top, right, bottom) at
    least ``size`` pixels on each side; returns the box in the decoded image's pixels."""
    width, height = img.size
    left, top, right, bottom = box
    need = (
        math.ceil(width * size / max(right - left, 1e-9)),
        math.ceil(height * size / max(bottom - top, 1e-9)),
    )
    img.draft("RGB", need)
    fx, fy = img.size[0] / width, img.size[1] / height
    return left * fx, top * fy, right * fx, bottom * fy


def _train_box(width: int, height: int, prep: Preprocessing, generator: torch.Generator):
    """A random-resized-crop box (left, top, right, bottom) for a ``width x height`` image."""
    shape_only = torch.empty(1, 0, height, width)
    top, left, h, w = (
        int(v) for v in resized_crop_params(shape_only, prep.crop_scale, generator=generator)
    )
    return left, top, left + w, top + h


def _eval_box(width: int, height: int, prep: Preprocessing):
    """The central square that, after resizing the shorter side to ``image_size / eval_crop``,
    is ``image_size`` wide: side ``eval_crop * min(width, height)`` in the image's pixels."""
    side = prep.eval_crop * min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def decode(path: str | os.PathLike, prep: Preprocessing, generator: torch.Generator | None):
    """The file at ``path`` as float32 ``[3, S, S]`` in [0, 1] (``S = prep.image_size``), cropped
    and resized for training (``prep.augment``, random draws from ``generator``) or evaluation."""
    size = prep.image_size
    try:
        with Image.open(path) as img:
            width, height = img.size
            if prep.augment:
                box = _train_box(width, height, prep, generator)
            else:
                box = _eval_box(width, height, prep)
            if prep.draft and img.format == "JPEG":
                box = _draft(img, box, size)
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box=box)
            pixels = np.asarray(rgb)
    except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"{path}: unreadable image ({err})") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)


def _augment_pixels(x: torch.Tensor, prep: Preprocessing, generator: torch.Generator | None):
    """Flip and colour jitter of one ``[3, S, S]`` image (training only), then normalization."""
    if prep.augment:
        x = random_hflip(x[None], generator=generator)
        if prep.color_jitter is not None:
            x = color_jitter(x, *prep.color_jitter, generator)
        x = x[0]
    if prep.mean is not None:
        mean = torch.tensor(prep.mean).view(3, 1, 1)
        x = (x - mean) / torch.tensor(prep.std).view(3, 1, 1)
    return x


class ImageFolder(Dataset):
    """One split of a labelled image folder (see :mod:`eisnn.data.folders`); ``x`` float32
    ``[3, S, S]``. Index with ``i`` (random draws from torch's global RNG) or with
    ``(i, base)`` from :class:`~eisnn.data.seeded.SeededBatchSampler` (draws from
    :func:`~eisnn.data.seeded.sample_generator`)."""

    per_sample_seeds = True  # the loader should index it through SeededBatchSampler

    def __init__(self, split: FolderSplit, prep: Preprocessing) -> None:
        self.split, self.prep = split, prep
        self.classes = list(split.classes)
        self.labels = torch.from_numpy(split.labels)

    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike,
        train: bool,
        prep: Preprocessing,
        val_fraction: float = DEFAULT_VAL_FRACTION,
        split_seed: int = 0,
    ) -> ImageFolder:
        split = scan_split(root, train, IMAGE_EXTENSIONS, val_fraction, split_seed)
        return cls(split, prep)

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, generator = key, None
        if isinstance(key, tuple):
            index, base = key
            generator = sample_generator(base, index)
        x = decode(self.split.path(index), self.prep, generator)
        return _augment_pixels(x, self.prep, generator), int(self.split.labels[index])
