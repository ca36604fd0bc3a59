"""Multiply-adds of one training step of an E-I network and its BN twin: the arithmetic floor of
the E-I / BN step-time ratio, whatever the implementation.

Counted per step, from the shapes of one forward pass of each twin (registry models, E-I Init on
a random batch): every convolution and linear map forward, input gradient (not for the image
input) and weight gradient; for each E-I layer the per-position ``W_EI`` products: two forward
(``W_EI I_I``, ``W_EI diag(g_I) I_I``), their recomputation in the backward, the input gradient
of ``I_I`` through both and the gradients of both weights (eight ``n_E x n_I`` products per
position; six without the recomputation). Element-wise work (BN, LIF, pooling, the division) is
not counted.

    PYTHONPATH=src python benchmarks/flop_ratio.py  # VGG-8 b32, ResNet-18 b16, T=4
    PYTHONPATH=src python benchmarks/flop_ratio.py --models vgg16 resnet34 --batch 16
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from eisnn.init import ei_init
from eisnn.models import create_model
from eisnn.nn import EIConv2d, EILinear

LATERAL_PRODUCTS = 8  # forward 2, recomputed 2, input gradient 2, weight gradients 2


def step_macs(name: str, batch: int, time_steps: int, image_size: int) -> tuple[int, int]:
    """``(input-map multiply-adds, lateral W_EI multiply-adds)`` of one training step of
    ``name``."""
    model = create_model(name, 10, 3, time_steps, image_size=image_size)
    x = torch.rand(batch, 3, image_size, image_size)
    if name.startswith("ei_"):
        ei_init(model, x)
    totals = {"map": 0, "lateral": 0}

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        passes = 2 if inputs[0].shape[1] == 3 else 3  # the image needs no input gradient
        positions = out[0, 0].numel() * out.shape[0]
        if isinstance(module, (nn.Conv2d, EIConv2d)):
            weight = (
                module.weight
                if isinstance(module, nn.Conv2d)
                else torch.cat([module.w_ee, module.w_ie])
            )
            totals["map"] += passes * positions * weight.numel()
        elif isinstance(module, (nn.Linear, EILinear)):
            weight = (
                module.weight
                if isinstance(module, nn.Linear)
                else torch.cat([module.w_ee, module.w_ie])
            )
            totals["map"] += passes * inputs[0].shape[0] * weight.numel()
            positions = inputs[0].shape[0]
        if isinstance(module, (EIConv2d, EILinear)) and not module.readout:
            totals["lateral"] += (
                LATERAL_PRODUCTS * positions * module.n_excitatory * module.n_inhibitory
            )

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        model(x)
    return totals["map"], totals["lateral"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg8", "resnet18"])
    parser.add_argument("--batch", type=int, default=None, help="default: vgg8 32, others 16")
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    for arch in args.models:
        batch = args.batch or (32 if arch == "vgg8" else 16)
        ei_map, lateral = step_macs(f"ei_{arch}", batch, args.T, args.image_size)
        bn_map, _ = step_macs(f"bn_{arch}", batch, args.T, args.image_size)
        floor = (ei_map + lateral) / bn_map
        without_recompute = (ei_map + lateral * (LATERAL_PRODUCTS - 2) / LATERAL_PRODUCTS) / bn_map
        print(
            f"{arch} (batch {batch}, T={args.T}): BN twin {bn_map / 1e9:.1f} GMAC; "
            f"E-I input maps {ei_map / 1e9:.1f} GMAC "
            f"({ei_map / bn_map:.3f}x) + W_EI products {lateral / 1e9:.2f} GMAC -> {floor:.3f}x "
            f"({without_recompute:.3f}x without recomputing the products)"
        )


if __name__ == "__main__":
    main()
