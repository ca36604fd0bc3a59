"""Whole-split, on-device batches with batched augmentation, so a GPU is not starved by a few CPU
cores."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .images import to_unit_float
from .transforms import BatchTransform, cifar_train

__all__ = ["ResidentLoader"]


class ResidentLoader:
    """Iterate ``(x float32 [B, C, H, W] in [0, 1], labels int64 [B])`` over a split held on
    ``device``.

    ``images`` (uint8 0..255 or float in [0, 1]) and ``labels`` are moved to ``device`` once.
    Each epoch draws a permutation (``shuffle``) and applies ``augment`` to every batch as a
    whole: ``True`` means the paper's CIFAR augmentation (crop 32 with padding 4, cutout, flip),
    a callable ``f(x, generator)`` is used as is, ``False`` or ``None`` means none. Random draws use
    ``generator`` (a ``torch.Generator`` on ``device``; default: the device's global RNG).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        augment: bool | BatchTransform | None = False,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.long().to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform: BatchTransform | None = (
            cifar_train if augment is True else (augment or None)
        )
        self.generator = generator
        self.drop_last = drop_last

    @classmethod
    def from_dataset(
        cls,
        dataset,
        batch_size: int,
        shuffle: bool = True,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> ResidentLoader:
        """Build from a static dataset of :func:`~eisnn.data.create_dataset` (one with
        ``as_tensors()``), using its own train augmentation when it was created with
        ``augment=True``."""
        images, labels = dataset.as_tensors()
        return cls(
            images,
            labels,
            batch_size,
            shuffle,
            dataset.batch_transform,
            device,
            generator,
            drop_last,
        )

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = to_unit_float(self.images[idx])
            if self.transform is not None:
                x = self.transform(x, self.generator)
            yield x, self.labels[idx]
