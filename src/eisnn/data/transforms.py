"""The paper's train and evaluation transforms for each dataset, as functions of a batch.

Static images ``[B, C, H, W]`` in [0, 1]; event frames ``[B, T, 2, H, W]`` of counts. The
per-sample datasets call them with ``B = 1``; :class:`~eisnn.data.batched.ResidentLoader` calls
them on whole batches on the device.

- CIFAR: random crop 32 (zero padding 4), the paper's cutout, horizontal flip.
- TinyImageNet: random resized crop 32 (scale 0.08-1, bilinear), flip, colour jitter
  (0.4, 0.4, 0.4, 0.1), cutout; evaluation resizes 64 -> 32.
- DVS128 Gesture: random resized crop 128 (scale 0.5-1, nearest), resize 48 (bilinear,
  antialiased, so values become averaged counts), flip; evaluation resizes to 48.
- CIFAR10-DVS: random resized crop 128 (scale 0.7-1, nearest), resize 48, flip, then one of
  roll in [-5, 5] px on both axes, rotation in [-30, 30] degrees, 16 x 16 square cutout.
- eventfolder: random resized crop at the sensor size (scale 0.7-1, nearest), resize to the
  input size, flip; evaluation resizes only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .augment import (
    Generator,
    Tensor,
    paper_cutout,
    randint,
    random_crop,
    random_hflip,
    random_roll,
    random_rotate,
    resize,
    resized_crop_bilinear,
    resized_crop_nearest,
    resized_crop_params,
    square_cutout,
)
from .color import color_jitter

BatchTransform = Callable[[Tensor, Generator], Tensor]

EVENT_SIZE = (48, 48)


def _on_frames(x: Tensor, op: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply an image op to ``[B, T, 2, H, W]`` frames viewed as ``[B, T*2, H, W]``."""
    B, T, P = x.shape[:3]
    y = op(x.reshape(B, T * P, *x.shape[3:]))
    return y.reshape(B, T, P, *y.shape[2:])


def cifar_train(x: Tensor, generator: Generator = None) -> Tensor:
    x = random_crop(x, 4, generator)
    x = paper_cutout(x, generator=generator)
    return random_hflip(x, generator=generator)


def digits_train(x: Tensor, generator: Generator = None) -> Tensor:
    """Random shift by up to one pixel (zero padding 1, crop back)."""
    return random_crop(x, 1, generator)


def tinyimagenet_train(x: Tensor, generator: Generator = None, size: int = 32) -> Tensor:
    x = resized_crop_bilinear(
        x, resized_crop_params(x, (0.08, 1.0), generator=generator), (size, size)
    )
    x = random_hflip(x, generator=generator)
    x = color_jitter(x, 0.4, 0.4, 0.4, 0.1, generator)
    return paper_cutout(x, generator=generator)


def tinyimagenet_eval(x: Tensor, size: int = 32) -> Tensor:
    return resize(x, (size, size))


def _crop_resize_flip(
    x: Tensor, scale: tuple[float, float], size: tuple[int, int], generator: Generator
) -> Tensor:
    full = tuple(x.shape[-2:])
    x = resized_crop_nearest(x, resized_crop_params(x, scale, generator=generator), full)
    return random_hflip(resize(x, size), generator=generator)


def gesture_train(x: Tensor, generator: Generator = None) -> Tensor:
    return _on_frames(x, lambda y: _crop_resize_flip(y, (0.5, 1.0), EVENT_SIZE, generator))


def event_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize every frame to ``size`` (bilinear, antialiased; identity at that size)."""
    return _on_frames(x, lambda y: resize(y, size))


def event_eval(x: Tensor) -> Tensor:
    """Evaluation transform of both DVS datasets: resize to 48 x 48."""
    return event_resize(x, EVENT_SIZE)


def eventfolder_train(
    x: Tensor, generator: Generator = None, size: tuple[int, int] = EVENT_SIZE
) -> Tensor:
    """Any event folder: random resized crop at the sensor size (scale 0.7-1, nearest), resize to
    ``size`` as the DVS datasets do, flip."""
    return _on_frames(x, lambda y: _crop_resize_flip(y, (0.7, 1.0), size, generator))


def eventfolder_eval(
    x: Tensor, generator: Generator = None, size: tuple[int, int] = EVENT_SIZE
) -> Tensor:
    """Any event folder's evaluation: the resize only (``generator`` unused; the signature of
    :func:`eventfolder_train`)."""
    return event_resize(x, size)


def _one_of_roll_rotate_cutout(x: Tensor, generator: Generator) -> Tensor:
    choice = randint(torch.zeros(x.shape[0], dtype=torch.long), 2, x, generator)[
        :, None, None, None
    ]
    rolled = random_roll(x, 5, generator)
    rotated = random_rotate(x, 30.0, generator)
    cut = square_cutout(x, 16, generator)
    return torch.where(choice == 0, rolled, torch.where(choice == 1, rotated, cut))


def cifar10_dvs_train(x: Tensor, generator: Generator = None) -> Tensor:
    return _on_frames(
        x,
        lambda y: _one_of_roll_rotate_cutout(
            _crop_resize_flip(y, (0.7, 1.0), EVENT_SIZE, generator), generator
        ),
    )


def digits_dvs_train(x: Tensor, generator: Generator = None) -> Tensor:
    """Emulated digits: random resized crop (scale 0.7-1, nearest) at the sensor size; no flip."""
    return _on_frames(
        x,
        lambda y: resized_crop_nearest(
            y, resized_crop_params(y, (0.7, 1.0), generator=generator), tuple(y.shape[-2:])
        ),
    )
