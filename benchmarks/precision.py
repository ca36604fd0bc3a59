"""Per-layer error of VGG-8's E-I layers under CPU bf16 autocast, for each precision option,
against the BN twin's layers (conv + BN), every layer fed its float32 input.

    PYTHONPATH=src python benchmarks/precision.py                 # width 0.5, batch 32, T=4
    PYTHONPATH=src python benchmarks/precision.py --width 1

Options (the node: subtraction, stabilization, division, gain, bias; docs/performance.md):

- ``bf16``: everything in bf16 (the code before the precision policy);
- ``a``: bf16 map (convolution / linear), float32 node;
- ``b``: the map with operands rounded to TF32 and a float32 output (what CUDA's TF32 computes),
  float32 node;
- ``c``: the map with bf16 operands and a float32 output (not offered by cuDNN convolutions),
  float32 node;
- ``fold``: the default: bf16 map of the folded weight ``[W_EE - W_EI W_IE; W_IE]``, float32 node
  (``eisnn.functional.precision``), float32 output;
- ``fold16``: the same with its output rounded to bf16.

The error of a layer is ``||out - ref|| / ||ref||`` of its output current; the verdict compares
each option's worst E-I layer with twice the BN twin's worst layer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import torch
from torch import nn

from eisnn import ei_init
from eisnn import functional as EF
from eisnn.diagnostics.precision import LayerRun, autocast_errors
from eisnn.models import create_model
from eisnn.nn import ConvBN, EILayer, LinearBN

BOUND = 2.0  # an E-I layer's error may be at most BOUND x the BN twin's worst layer's


def _node(layer: EILayer, currents: torch.Tensor) -> torch.Tensor:
    """The float32 node after an unfolded map ``[I_EE; I_I]``."""
    return EF.ei_integrate_balanced(
        currents,
        layer.n_excitatory,
        layer.w_ei,
        layer.g_i,
        layer.g_e,
        layer.b_e,
        balanced=False,
        readout=layer.readout,
        stabilization=layer.stabilization,
        epsilon=layer.epsilon,
        ste=layer.ste,
    )


def round_tf32(t: torch.Tensor) -> torch.Tensor:
    """``t`` (float32) rounded to TF32 (10 mantissa bits, to nearest even), as float32."""
    bits = t.float().contiguous().view(torch.int32)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFF
    return bits.view(torch.float32)


def round_bf16(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to bf16, as float32."""
    return t.bfloat16().float()


def rounded_operands(rounding: Callable[[torch.Tensor], torch.Tensor]) -> LayerRun:
    """Option: the map in float32 outside autocast on operands rounded by ``rounding``, then the
    float32 node."""

    def run(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            weight = EF.stack_weights(rounding(layer.w_ee), rounding(layer.w_ie))
            return _node(layer, layer._drive(rounding(x), weight))

    return run


OPTIONS: dict[str, LayerRun] = {
    "bf16": lambda layer, x: layer.integrate(layer.stacked_currents(x)),
    "a": lambda layer, x: _node(layer, layer.stacked_currents(x)),
    "b": rounded_operands(round_tf32),
    "c": rounded_operands(round_bf16),
    "fold": lambda layer, x: layer(x),
    "fold16": lambda layer, x: layer(x).bfloat16(),
}


def measure(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-layer errors of every option (E-I VGG-8) and of the BN twin."""
    torch.manual_seed(args.seed)
    x = torch.rand(args.batch, 3, args.image_size, args.image_size)
    options = {"width": args.width, "image_size": args.image_size}
    ei = create_model("ei_vgg8", 10, 3, args.T, **options)
    ei_init(ei, x)
    bn = create_model("bn_vgg8", 10, 3, args.T, **options).train()
    ei_errors = {name: autocast_errors(ei, x, (EILayer,), run) for name, run in OPTIONS.items()}
    return ei_errors, autocast_errors(bn, x, (ConvBN, LinearBN))


def print_table(ei_errors: dict[str, dict[str, float]], bn_errors: dict[str, float]) -> bool:
    """Print the layers x options table and the verdicts; True when ``fold`` (the default)
    meets the bound."""
    names = list(next(iter(ei_errors.values())))
    print(f"| layer | {' | '.join(ei_errors)} | BN twin |")
    print(f"|---|{'---|' * (len(ei_errors) + 1)}")
    for name in names:
        cells = " | ".join(f"{errs[name]:.2e}" for errs in ei_errors.values())
        bn_cell = f"{bn_errors[name]:.2e}" if name in bn_errors else "- (no BN)"
        print(f"| {name} | {cells} | {bn_cell} |")
    bn_worst = max(bn_errors.values())
    ratios = {option: max(errs.values()) / bn_worst for option, errs in ei_errors.items()}
    cells = " | ".join(f"{r:.2f}" for r in ratios.values())
    print(f"| worst E-I / worst BN ({bn_worst:.2e}) | {cells} | 1 |")
    for option, ratio in ratios.items():
        print(f"{option}: {'within' if ratio <= BOUND else 'OUTSIDE'} {BOUND}x the BN twin's worst")
    return ratios["fold"] <= BOUND


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; exit status 1 when the default policy misses the bound."""
    parser = argparse.ArgumentParser(prog="benchmarks/precision.py", description=__doc__)
    parser.add_argument("--width", type=float, default=0.5, help="VGG channel multiplier")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=4, help="time steps (of the BN twin's T*B)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        f"VGG-8 width {args.width}, batch {args.batch}, {args.image_size}x{args.image_size}, "
        f"T={args.T}, CPU bf16 autocast; relative error per layer on its float32 input"
    )
    return 0 if print_table(*measure(args)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
