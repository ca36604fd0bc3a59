"""``create_dataset`` / ``dataset_info``: every dataset by name, with the shapes networks need."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch.utils.data import Dataset

from . import transforms as tf
from .folders import DEFAULT_VAL_FRACTION

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
}
EVENTFOLDER_T = 10


def _eventfolder_info(
    root: Any,
    split_by: str = "number",
    cache_dir: Any = None,
    sensor_size: Sequence[int] | None = None,
    image_size: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
) -> DatasetInfo:
    """Two-channel frames at ``image_size`` or the sensor's (square) size; the classes are the
    folder's."""
    from .eventfolder import input_side, scan_recordings, sensor_size_of

    classes = scan_recordings(root, True, val_fraction, split_seed).classes
    size = sensor_size_of(root, sensor_size, cache_dir, val_fraction, split_seed)
    return DatasetInfo(len(classes), 2, input_side(size, image_size), True, EVENTFOLDER_T)


def _imagefolder_info(root: Any, image_size: int = 224, **_preprocessing: Any) -> DatasetInfo:
    """RGB images at ``image_size``; the classes are the folder's (0 without a folder)."""
    from .folders import class_names

    return DatasetInfo(len(class_names(root)) if root is not None else 0, 3, image_size, False, 4)


# datasets whose classes and sizes are read from the data: name -> info(root, **options)
_INFO_FROM_DATA: dict[str, Callable[..., DatasetInfo]] = {
    "eventfolder": _eventfolder_info,
    "imagefolder": _imagefolder_info,
}
DATASET_NAMES: tuple[str, ...] = (*_INFO, *_INFO_FROM_DATA)


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def dataset_info(name: str, root: Any = None, **options: Any) -> DatasetInfo:
    """Classes, channels, input side, event or not, default T of dataset ``name``.

    A dataset read from a user's folder (``eventfolder``) learns them from ``root`` and the
    ``options`` it is created with; the others ignore both.
    """
    _check_name(name)
    if name in _INFO_FROM_DATA:
        return _INFO_FROM_DATA[name](root, **options)
    return _INFO[name]


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


def _eventfolder(
    root,
    train,
    T,
    augment,
    split_by: str = "number",
    cache_dir=None,
    sensor_size: Sequence[int] | None = None,
    image_size: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
):
    from .eventfolder import eventfolder_dataset, scan_recordings, sensor_size_of

    split = scan_recordings(root, train, val_fraction, split_seed)
    size = sensor_size_of(root, sensor_size, cache_dir, val_fraction, split_seed)
    out = size if image_size is None else (image_size, image_size)
    transform = _event_transform(
        partial(tf.eventfolder_train, size=out),
        partial(tf.eventfolder_eval, size=out),
        train,
        augment,
    )
    return eventfolder_dataset(split, train, T, split_by, size, cache_dir, transform)


def _digits_seq(root, train, T, augment):
    from .digits_seq import digits_seq_dataset

    return digits_seq_dataset(train, T)


def _imagefolder(
    root,
    train,
    T,
    augment,
    image_size: int = 224,
    val_fraction: float = DEFAULT_VAL_FRACTION,
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


_BUILDERS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "digits_dvs": _digits_dvs,
    "digits_seq": _digits_seq,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "tinyimagenet": _tinyimagenet,
    "dvs128_gesture": _gesture,
    "cifar10_dvs": _cifar10_dvs,
    "eventfolder": _eventfolder,
    "imagefolder": _imagefolder,
}


def dataset_options(name: str) -> tuple[str, ...]:
    """The keyword options ``create_dataset(name, ...)`` takes."""
    _check_name(name)
    return tuple(list(inspect.signature(_BUILDERS[name]).parameters)[4:])


def create_dataset(
    name: str, root: Any, train: bool, T: int | None = None, augment: bool = True, **kwargs: Any
) -> Dataset:
    """Dataset ``name`` (one of ``DATASET_NAMES``) from the folder ``root``, yielding
    ``(x, label)``.

    Static images: ``x`` float32 ``[C, H, W]`` in [0, 1], no mean/std normalisation, ``T`` unused.
    Event data: ``x`` float32 ``[T, 2, H, W]`` (``T`` defaults to the paper's). ``augment=True``
    applies the paper's training augmentation to the train split; otherwise the evaluation
    transform. Options: ``image_size`` (digits, tinyimagenet, eventfolder, imagefolder);
    ``split_by`` ("number" | "time") and ``cache_dir`` (event datasets); ``label_order``
    ("numeric" | "paper", dvs128_gesture); ``sensor_size`` (eventfolder); ``val_fraction``,
    ``split_seed`` (the folder datasets); ``crop_scale``, ``eval_crop``, ``color_jitter``,
    ``mean``, ``std`` (imagefolder). See :mod:`eisnn.data.eventfolder` and
    :mod:`eisnn.data.imagefolder`.
    """
    allowed = dataset_options(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"dataset {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(allowed) or 'none'}"
        )
    if T is None and (name in _INFO_FROM_DATA or _INFO[name].is_event):
        T = dataset_info(name, root, **kwargs).default_T
    return _BUILDERS[name](root, train, T, augment, **kwargs)
