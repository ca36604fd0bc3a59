"""A dataset of in-memory images with the paper's per-sample transform."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .transforms import BatchTransform

__all__ = ["ImageTensorDataset", "to_unit_float"]


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [0, 1]; float images pass through as float32."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


class ImageTensorDataset(Dataset):
    """Images ``[N, C, H, W]`` (uint8 or float in [0, 1]) and labels; ``x`` is float32 in [0, 1].

    ``train_transform`` (a batch transform, see :mod:`eisnn.data.transforms`) is applied to each
    sample when ``augment`` is true. :meth:`as_tensors` hands the raw split to
    :class:`~eisnn.data.batched.ResidentLoader`, which applies ``batch_transform`` to whole batches.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        train_transform: BatchTransform | None,
        augment: bool,
        classes: list[str],
    ):
        self.images = images
        self.labels = labels.long()
        self.classes = classes
        self.batch_transform = train_transform if augment else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = to_unit_float(self.images[index])
        if self.batch_transform is not None:
            x = self.batch_transform(x[None], None)[0]
        return x, int(self.labels[index])

    def as_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split, untransformed: ``(images [N, C, H, W], labels int64 [N])``."""
        return self.images, self.labels
