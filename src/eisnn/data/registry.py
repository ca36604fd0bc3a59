"""``create_dataset`` / ``dataset_info``: every dataset by name, with the shapes networks need."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from . import transforms as tf

__all__ = ["DatasetInfo", "DATASET_NAMES", "dataset_info", "dataset_options", "create_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a network needs to know: classes, input channels, input side (pixels), event or static
    (event samples are ``[T, 2, image_size, image_size]``, static ones ``[C, H, W]``), default
    ``T``."""

    num_classes: int
    in_channels: int
    image_size: int
    is_event: bool
    default_T: int

    def input_shape(self, T: int | None = None) -> tuple[int, ...]:
        """Shape of one sample ``x`` as the dataset yields it."""
        side = (self.image_size, self.image_size)
        return (
            (T or self.default_T, self.in_channels, *side)
            if self.is_event
            else (self.in_channels, *side)
        )


_INFO = {
    "digits": DatasetInfo(10, 1, 16, False, 4),
    "digits_dvs": DatasetInfo(10, 2, 32, True, 8),
    "digits_seq": DatasetInfo(10, 8, 1, True, 8),
    "cifar10": DatasetInfo(10, 3, 32, False, 4),
    "cifar100": DatasetInfo(100, 3, 32, False, 4),
    "tinyimagenet": DatasetInfo(200, 3, 32, False, 4),
    "dvs128_gesture": DatasetInfo(11, 2, 48, True, 16),
    "cifar10_dvs": DatasetInfo(10, 2, 48, True, 10),
    "imagefolder": DatasetInfo(0, 3, 224, False, 4),  # classes: the data's (see dataset_info)
}
DATASET_NAMES: tuple[str, ...] = tuple(_INFO)


def _check_name(name: str) -> None:
    if name not in _INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def dataset_info(name: str, root: Any = None) -> DatasetInfo:
    """Classes, channels, input side, event or not, default T of dataset ``name``; a folder
    dataset (``imagefolder``) counts its classes in ``root`` (0 without it)."""
    _check_name(name)
    info = _INFO[name]
    if name == "imagefolder" and root is not None:
        from dataclasses import replace

        from .folders import class_names

        info = replace(info, num_classes=len(class_names(root)))
    return info


def _digits(root, train, T, augment, image_size: int = 16):
    from .digits import digits_dataset

    return digits_dataset(train, augment, image_size)


def _cifar(name):
    def build(root, train, T, augment):
        from .cifar import cifar_dataset

        return cifar_dataset(name, root, train, augment)

    return build


def _tinyimagenet(root, train, T, augment, image_size: int = 32):
    from .tinyimagenet import TinyImageNet

    return TinyImageNet(root, train, augment, image_size)


def _event_transform(train_tf: Callable, eval_tf: Callable | None, train: bool, augment: bool):
    return train_tf if (train and augment) else eval_tf


def _gesture(
    root, train, T, augment, split_by: str = "number", cache_dir=None, label_order: str = "numeric"
):
    from .gesture import GESTURE, PAPER_GESTURE_ORDER, segmented_dataset

    orders = {"numeric": None, "paper": PAPER_GESTURE_ORDER}
    if label_order not in orders:
        raise ValueError(
            f"dvs128_gesture: label_order must be 'numeric' or 'paper', got {label_order!r}"
        )
    return segmented_dataset(
        GESTURE,
        root,
        train,
        T,
        split_by,
        cache_dir,
        _event_transform(tf.gesture_train, tf.event_eval, train, augment),
        orders[label_order],
    )


def _cifar10_dvs(root, train, T, augment, split_by: str = "number", cache_dir=None):
    from .cifar10_dvs import cifar10_dvs_dataset

    return cifar10_dvs_dataset(
        root,
        train,
        T,
        split_by,
        cache_dir,
        _event_transform(tf.cifar10_dvs_train, tf.event_eval, train, augment),
    )


def _digits_dvs(root, train, T, augment, split_by: str = "number", cache_dir=None):
    from .digits_dvs import digits_dvs_dataset

    return digits_dvs_dataset(
        root,
        train,
        T,
        split_by,
        cache_dir,
        _event_transform(tf.digits_dvs_train, None, train, augment),
    )


def _digits_seq(root, train, T, augment):
    from .digits_seq import digits_seq_dataset

    return digits_seq_dataset(train, T)


def _imagefolder(
    root,
    train,
    T,
    augment,
    image_size: int = 224,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    crop_scale: Sequence[float] | None = None,
    eval_crop: float = 0.875,
    color_jitter: Sequence[float] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
):
    from .imagefolder import ImageFolder, Preprocessing

    prep = Preprocessing(
        image_size,
        augment and train,
        tuple(crop_scale) if crop_scale is not None else (0.08, 1.0),
        eval_crop,
        None if color_jitter is None else tuple(color_jitter),
        None if mean is None else tuple(mean),
        None if std is None else tuple(std),
    )
    return ImageFolder.from_folder(root, train, prep, val_fraction, split_seed)


def dataset_options(name: str) -> frozenset[str]:
    """The options (keyword arguments of :func:`create_dataset`) dataset ``name`` takes."""
    _check_name(name)
    return frozenset(list(inspect.signature(_BUILDERS[name]).parameters)[4:])


_BUILDERS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "digits_dvs": _digits_dvs,
    "digits_seq": _digits_seq,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "tinyimagenet": _tinyimagenet,
    "dvs128_gesture": _gesture,
    "cifar10_dvs": _cifar10_dvs,
    "imagefolder": _imagefolder,
}


def create_dataset(
    name: str, root: Any, train: bool, T: int | None = None, augment: bool = True, **kwargs: Any
) -> Dataset:
    """Dataset ``name`` (one of ``DATASET_NAMES``) from the folder ``root``, yielding
    ``(x, label)``.

    Static images: ``x`` float32 ``[C, H, W]`` in [0, 1], no mean/std normalisation, ``T`` unused.
    Event data: ``x`` float32 ``[T, 2, H, W]`` (``T`` defaults to the paper's). ``augment=True``
    applies the paper's training augmentation to the train split; otherwise the evaluation
    transform. Options: ``image_size`` (digits, tinyimagenet, imagefolder); ``split_by``
    ("number" | "time") and ``cache_dir`` (event datasets); ``label_order`` ("numeric" | "paper",
    dvs128_gesture); ``val_fraction``, ``split_seed``, ``crop_scale``, ``eval_crop``,
    ``color_jitter``, ``mean``, ``std`` (imagefolder, see :mod:`eisnn.data.imagefolder`).
    """
    info = dataset_info(name)
    builder = _BUILDERS[name]
    allowed = sorted(dataset_options(name), key=list(inspect.signature(builder).parameters).index)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"dataset {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(allowed) or 'none'}"
        )
    if info.is_event:
        T = info.default_T if T is None else T
    return builder(root, train, T, augment, **kwargs)
