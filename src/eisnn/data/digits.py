"""scikit-learn's 1797 real 8x8 handwritten digits (offline), the bundled default dataset.

Values ``/16`` into [0, 1], one channel, upsampled (bilinear) to ``image_size``. The split is a
fixed stratified 80/20 split (``random_state=0``), independent of any global RNG.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .images import ImageTensorDataset
from .transforms import digits_train

__all__ = ["digits_split", "digits_dataset"]

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_split(train: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 [N, 8, 8] in [0, 1], labels int64 [N])`` of the fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return (x_tr, y_tr) if train else (x_te, y_te)


def digits_dataset(train: bool, augment: bool, image_size: int = 16) -> ImageTensorDataset:
    images, labels = digits_split(train)
    x = torch.from_numpy(images)[:, None]
    if image_size != 8:
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False
        ).clamp_(0, 1)
    return ImageTensorDataset(
        x, torch.from_numpy(labels), digits_train, augment and train, [str(i) for i in range(10)]
    )
