"""Colour jitter on RGB batches ``[B, 3, H, W]`` in [0, 1], each sample with its own factors.

Factors: brightness ``b ~ U(1-B, 1+B)`` (``x b``), contrast ``c ~ U(1-C, 1+C)`` (blend with the
image's mean grey level), saturation ``s ~ U(1-S, 1+S)`` (blend with the per-pixel grey), hue
``h ~ U(-H, H)`` (added to the HSV hue, modulo 1); applied in a random order per sample,
clamping to [0, 1] after each step. Grey = ``0.299 R + 0.587 G + 0.114 B``.
"""

from __future__ import annotations

import torch

from .augment import Generator, Tensor, uniform

__all__ = ["color_jitter", "rgb_to_hsv", "hsv_to_rgb"]

GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _grey(x: Tensor) -> Tensor:
    r, g, b = x.unbind(1)
    return (GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b)[:, None]


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    f = factor[:, None, None, None]
    return (f * x + (1 - f) * other).clamp(0, 1)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB ``[B, 3, H, W]`` in [0, 1] to HSV with all three in [0, 1]."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(
        maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc)
    )
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, maxc), dim=1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    sector = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack(
        (
            torch.stack((v, q, p, p, t, v), dim=1),
            torch.stack((t, v, v, q, p, p), dim=1),
            torch.stack((p, p, t, v, v, q), dim=1),
        ),
        dim=1,
    )  # [B, 3 channels, 6 sectors, H, W]
    return table.gather(2, sector[:, None, None].expand(-1, 3, 1, -1, -1))[:, :, 0]


def _shift_hue(x: Tensor, shift: Tensor) -> Tensor:
    hsv = rgb_to_hsv(x)
    hue = (hsv[:, 0] + shift[:, None, None]) % 1.0
    return hsv_to_rgb(torch.stack((hue, hsv[:, 1], hsv[:, 2]), dim=1))


def color_jitter(
    x: Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    generator: Generator = None,
) -> Tensor:
    """Random brightness, contrast, saturation and hue (see the module docstring)."""
    B = x.shape[0]
    b = uniform(B, 1 - brightness, 1 + brightness, x, generator)
    c = uniform(B, 1 - contrast, 1 + contrast, x, generator)
    s = uniform(B, 1 - saturation, 1 + saturation, x, generator)
    h = uniform(B, -hue, hue, x, generator)
    order = torch.rand(B, 4, generator=generator, device=x.device).argsort(dim=1)
    ops = (
        lambda y: (y * b[:, None, None, None]).clamp(0, 1),
        lambda y: _blend(y, _grey(y).mean(dim=(2, 3), keepdim=True), c),
        lambda y: _blend(y, _grey(y), s),
        lambda y: _shift_hue(y, h),
    )
    for step in range(4):
        for k, op in enumerate(ops):
            chosen = order[:, step] == k
            x = torch.where(chosen[:, None, None, None], op(x), x)
    return x
