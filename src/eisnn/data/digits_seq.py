"""``digits_seq``: scikit-learn's 8x8 digits as sequences, fed row by row (a sequence task,
offline).

Sample ``x`` is ``[T=8, 8, 1, 1]``: step ``t`` carries row ``t`` of the digit (8 pixels in [0, 1],
as 8 channels of a 1x1 frame, so that every eisnn network reads it as event frames). Same fixed
80/20 split as ``digits``; no augmentation.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .digits import digits_split

__all__ = ["SEQ_STEPS", "digits_seq_dataset"]

SEQ_STEPS = 8


def digits_seq_dataset(train: bool, T: int) -> TensorDataset:
    if T != SEQ_STEPS:
        raise ValueError(f"digits_seq has {SEQ_STEPS} steps (the rows of a digit), got T={T}")
    images, labels = digits_split(train)
    return TensorDataset(torch.from_numpy(images)[:, :, :, None, None], torch.from_numpy(labels))
