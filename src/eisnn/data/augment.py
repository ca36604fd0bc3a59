"""Random augmentation ops on image batches ``[B, C, H, W]``, each sample with its own parameters.

Every op draws its parameters with ``torch`` from ``generator`` (default: the global RNG, which
DataLoader workers seed independently) on the batch's device, so the same code serves the
per-sample dataset path (``B = 1``) and the batched on-device path. Event frames
``[B, T, 2, H, W]`` are viewed as ``[B, T*2, H, W]``, so one sample's parameters apply to all
its frames and both polarities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "uniform",
    "randint",
    "random_crop",
    "random_hflip",
    "paper_cutout",
    "resized_crop_params",
    "resized_crop_nearest",
    "resized_crop_bilinear",
    "resize",
    "random_roll",
    "random_rotate",
    "square_cutout",
]

Tensor = torch.Tensor
Generator = torch.Generator | None


def uniform(n: int, low: float, high: float, like: Tensor, generator: Generator = None) -> Tensor:
    """``n`` draws of ``U(low, high)`` (float32) on ``like``'s device."""
    return torch.rand(n, generator=generator, device=like.device) * (high - low) + low


def randint(
    low: Tensor | int, high: Tensor | int, like: Tensor, generator: Generator = None
) -> Tensor:
    """Integers uniform on ``[low, high]`` (both inclusive, elementwise), int64 on ``like``'s
    device."""
    low_t = torch.as_tensor(low, device=like.device)
    high_t = torch.as_tensor(high, device=like.device)
    n = torch.broadcast_shapes(low_t.shape, high_t.shape)
    u = torch.rand(n, generator=generator, device=like.device, dtype=torch.float64)
    return (low_t + torch.floor(u * (high_t - low_t + 1))).long()


def _gather_window(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``out[b, c, i, j] = x[b, c, rows[b, i], cols[b, j]]``."""
    B, C, _, W = x.shape
    x = x.gather(2, rows[:, None, :, None].expand(B, C, rows.shape[1], W))
    return x.gather(3, cols[:, None, None, :].expand(B, C, rows.shape[1], cols.shape[1]))


def random_crop(x: Tensor, padding: int, generator: Generator = None) -> Tensor:
    """Zero-pad by ``padding`` and crop back to ``H x W`` at a uniform offset in
    ``[0, 2*padding]``."""
    B, _, H, W = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    zeros = torch.zeros(B, dtype=torch.long)
    top = randint(zeros, 2 * padding, x, generator)
    left = randint(zeros, 2 * padding, x, generator)
    rows = top[:, None] + torch.arange(H, device=x.device)
    cols = left[:, None] + torch.arange(W, device=x.device)
    return _gather_window(padded, rows, cols)


def random_hflip(x: Tensor, p: float = 0.5, generator: Generator = None) -> Tensor:
    """Mirror the width axis of each sample with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _box_mask(top: Tensor, left: Tensor, h: Tensor, w: Tensor, H: int, W: int) -> Tensor:
    """Boolean ``[B, H, W]``, true inside rows ``[top, top+h)`` and columns ``[left, left+w)``."""
    r = torch.arange(H, device=top.device)
    c = torch.arange(W, device=top.device)
    inside_r = (r >= top[:, None]) & (r < (top + h)[:, None])
    inside_c = (c >= left[:, None]) & (c < (left + w)[:, None])
    return inside_r[:, :, None] & inside_c[:, None, :]


def paper_cutout(
    x: Tensor,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.4, 2.5),
    generator: Generator = None,
) -> Tensor:
    """The paper's cutout on RGB images in [0, 1].

    With probability ``p``: area ``s = U(scale) * H * W``, aspect ``r = U(ratio)``,
    ``h = floor(sqrt(s r))``, ``w = floor(sqrt(s / r))`` (at most ``H``, ``W``), top-left corner
    uniform among the positions where the box fits; the box is set to ``(c / 255, 0, 0)`` with
    ``c`` uniform in ``0..255`` (the fill lands in the red channel only).
    """
    B, C, H, W = x.shape
    apply = torch.rand(B, generator=generator, device=x.device) < p
    area = uniform(B, *scale, x, generator) * (H * W)
    aspect = uniform(B, *ratio, x, generator)
    h = torch.sqrt(area * aspect).floor().long().clamp(max=H)
    w = torch.sqrt(area / aspect).floor().long().clamp(max=W)
    top = randint(torch.zeros_like(h), H - h, x, generator)
    left = randint(torch.zeros_like(w), W - w, x, generator)
    value = randint(torch.zeros(B, dtype=torch.long), 255, x, generator).to(x.dtype) / 255.0
    fill = torch.zeros(B, C, 1, 1, dtype=x.dtype, device=x.device)
    fill[:, 0, 0, 0] = value
    mask = _box_mask(top, left, h, w, H, W) & apply[:, None, None]
    return torch.where(mask[:, None], fill, x)


def resized_crop_params(
    x: Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: Generator = None,
    attempts: int = 10,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random-resized-crop boxes ``(top, left, h, w)`` for each sample of ``x``.

    Up to ``attempts`` tries: area ``U(scale) * H * W``, log-aspect ``U(log ratio)``,
    ``w = round(sqrt(area * aspect))``, ``h = round(sqrt(area / aspect))``; the first box that
    fits is placed uniformly. If none fits: the largest central box with aspect clamped to
    ``ratio``.
    """
    B, _, H, W = x.shape
    area = uniform(B * attempts, *scale, x, generator).view(B, attempts) * (H * W)
    aspect = torch.exp(
        uniform(B * attempts, math.log(ratio[0]), math.log(ratio[1]), x, generator)
    ).view(B, attempts)
    w_try = torch.round(torch.sqrt(area * aspect)).long()
    h_try = torch.round(torch.sqrt(area / aspect)).long()
    fits = (w_try > 0) & (w_try <= W) & (h_try > 0) & (h_try <= H)
    first = fits.float().argmax(dim=1, keepdim=True)
    found = fits.any(dim=1)
    in_ratio = W / H
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = W, round(W / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(H * ratio[1]), H
    else:
        fallback_w, fallback_h = W, H
    w = torch.where(found, w_try.gather(1, first)[:, 0], fallback_w)
    h = torch.where(found, h_try.gather(1, first)[:, 0], fallback_h)
    top = torch.where(found, randint(torch.zeros_like(h), H - h, x, generator), (H - h) // 2)
    left = torch.where(found, randint(torch.zeros_like(w), W - w, x, generator), (W - w) // 2)
    return top, left, h, w


def resized_crop_nearest(
    x: Tensor, box: tuple[Tensor, Tensor, Tensor, Tensor], size: tuple[int, int]
) -> Tensor:
    """Crop each sample's box and resize it to ``size`` by nearest neighbour (output pixel ``i``
    reads crop pixel ``floor(i * h / out_h)``, as ``interpolate(mode="nearest")``)."""
    top, left, h, w = box
    out_h, out_w = size
    i = torch.arange(out_h, device=x.device, dtype=torch.float64)
    j = torch.arange(out_w, device=x.device, dtype=torch.float64)
    rows = top[:, None] + torch.floor(i[None] * (h[:, None].double() / out_h)).long()
    cols = left[:, None] + torch.floor(j[None] * (w[:, None].double() / out_w)).long()
    return _gather_window(x, rows, cols)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize with antialiasing (a box-averaging filter when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def resized_crop_bilinear(
    x: Tensor, box: tuple[Tensor, Tensor, Tensor, Tensor], size: tuple[int, int]
) -> Tensor:
    """Crop each sample's box and resize it to ``size`` (bilinear, antialiased)."""
    top, left, h, w = (v.tolist() for v in box)
    return torch.cat(
        [
            resize(x[b : b + 1, :, top[b] : top[b] + h[b], left[b] : left[b] + w[b]], size)
            for b in range(x.shape[0])
        ]
    )


def random_roll(x: Tensor, max_shift: int, generator: Generator = None) -> Tensor:
    """Roll (with wrap-around) both spatial axes by integers uniform in
    ``[-max_shift, max_shift]``."""
    B, _, H, W = x.shape
    zeros = torch.zeros(B, dtype=torch.long)
    dy = randint(zeros - max_shift, max_shift, x, generator)
    dx = randint(zeros - max_shift, max_shift, x, generator)
    rows = (torch.arange(H, device=x.device) - dy[:, None]) % H
    cols = (torch.arange(W, device=x.device) - dx[:, None]) % W
    return _gather_window(x, rows, cols)


def random_rotate(x: Tensor, degrees: float, generator: Generator = None) -> Tensor:
    """Rotate about the image centre by an angle uniform in ``[-degrees, degrees]``
    (nearest neighbour, zero fill, same output size)."""
    B, _, H, W = x.shape
    angle = uniform(B, -degrees, degrees, x, generator) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(B, 2, 3, device=x.device)
    # pixel-space rotation [[cos, -sin], [sin, cos]] expressed in normalised grid coordinates
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * (H / W)
    theta[:, 1, 0], theta[:, 1, 1] = sin * (W / H), cos
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def square_cutout(x: Tensor, length: int, generator: Generator = None) -> Tensor:
    """Zero a ``length x length`` square centred at a uniform pixel, clipped at the borders."""
    B, _, H, W = x.shape
    zeros = torch.zeros(B, dtype=torch.long)
    cy = randint(zeros, H - 1, x, generator)
    cx = randint(zeros, W - 1, x, generator)
    top, left = (cy - length // 2).clamp(0, H), (cx - length // 2).clamp(0, W)
    bottom, right = (cy + length // 2).clamp(0, H), (cx + length // 2).clamp(0, W)
    mask = _box_mask(top, left, bottom - top, right - left, H, W)
    return x.masked_fill(mask[:, None], 0)
