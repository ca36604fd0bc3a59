"""The DANN VGG-16 baseline: a non-spiking E-I network (ReLU units, no normalization, T = 1).

Convolutions (3x3, E/I channels) with ReLU and 2x2 max pooling, adaptive average pooling to 4x4,
two dense E-I layers (ReLU, dropout) and a dense E-I output layer (10 E / 1 I for CIFAR-10).
It takes the same inputs as the spiking networks: a static ``[B, C, H, W]`` image gives the
logits directly (``T`` is accepted and has no effect, the network has no state); event frames
``[B, T, C, H, W]`` are classified frame by frame and the logits averaged over time.
"""

from __future__ import annotations

import torch
from torch import nn

from .dann import DANNConv2d, DANNLinear

POOL = "P"
DANN_VGG16_CONVS: tuple[tuple[int, int] | str, ...] = (
    (64, 10), (64, 10), POOL,
    (128, 20), (128, 20), POOL,
    (256, 40), (256, 40), (256, 40), POOL,
    (512, 80), (512, 80), (512, 80), POOL,
    (512, 80), (512, 80), (512, 80), POOL,
)  # fmt: skip
DANN_VGG16_DENSE: tuple[tuple[int, int], ...] = ((4096, 409), (4096, 409))
POOLED_SIZE = 4


class DANNVGG(nn.Module):
    """``convs`` lists ``(n_E, n_I)`` of each 3x3 conv layer and ``"P"`` for max pooling; ``dense``
    the ``(n_E, n_I)`` of the hidden dense layers. ``width`` scales every unit count (at least
    1)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        T: int,
        image_size: int = 32,
        width: float = 1.0,
        dropout: float = 0.5,
        corrected_gradients: bool = True,
        convs: tuple[tuple[int, int] | str, ...] = DANN_VGG16_CONVS,
        dense: tuple[tuple[int, int], ...] = DANN_VGG16_DENSE,
    ) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        if image_size >> convs.count(POOL) < 1:
            raise ValueError(
                f"image_size {image_size} is too small for {convs.count(POOL)} poolings of 2x2"
            )
        self.T = T

        def scaled(n: int) -> int:
            return max(1, round(n * width))

        layers: list[nn.Module] = []
        channels = in_channels
        for item in convs:
            if item == POOL:
                layers.append(nn.MaxPool2d(2, 2))
                continue
            n_e, n_i = item
            conv = DANNConv2d(
                channels,
                scaled(n_e),
                scaled(n_i),
                first=not layers,
                corrected_gradients=corrected_gradients,
            )
            layers += [conv, nn.ReLU()]
            channels = scaled(n_e)
        layers += [nn.AdaptiveAvgPool2d(POOLED_SIZE), nn.Flatten()]
        features = channels * POOLED_SIZE * POOLED_SIZE
        for n_e, n_i in dense:
            layers += [
                DANNLinear(
                    features, scaled(n_e), scaled(n_i), corrected_gradients=corrected_gradients
                ),
                nn.ReLU(),
            ]
            layers.append(nn.Dropout(dropout) if dropout > 0 else nn.Identity())
            features = scaled(n_e)
        layers.append(
            DANNLinear(
                features,
                num_classes,
                max(1, num_classes // 10),
                corrected_gradients=corrected_gradients,
            )
        )
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return self.layers(x)
        if x.dim() == 5:
            logits = self.layers(x.flatten(0, 1))
            return logits.view(x.shape[0], x.shape[1], -1).mean(1)
        raise ValueError(
            f"DANNVGG expects [B, C, H, W] or frames [B, T, C, H, W], got shape {tuple(x.shape)}"
        )
