"""The config of a tiny training run shared by the trainer tests: an E-I MLP on 8x8 digits,
T=2, two epochs of a few batches, no progress bar. Tests override what they vary."""

from __future__ import annotations

from typing import Any

TINY_RUN: dict[str, Any] = dict(
    model="ei_mlp",
    dataset="digits",
    image_size=8,
    T=2,
    epochs=2,
    batch_size=64,
    warmup_epochs=0.5,
    warmup_start_lr=1e-4,
    progress=False,
)
