"""Per-layer error of a network's layers under autocast, each fed its float32 input.

One float32 forward records the input of every layer of the chosen types; then each layer runs
once more on exactly that input, in float32 and under autocast, so errors do not compound from
layer to layer. The error of a layer is ``||out - ref|| / ||ref||`` (Frobenius norms over the
whole batch) of its output current.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LayerRun = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _call(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x)


def layer_inputs(
    model: nn.Module, x: torch.Tensor, types: tuple[type[nn.Module], ...]
) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """``name -> (layer, its input)`` for every module of ``types`` in one float32 forward of
    ``model`` on ``x`` (without gradients)."""
    found: dict[str, tuple[nn.Module, torch.Tensor]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            found[name] = (module, args[0].detach())

        return hook

    handles = [
        m.register_forward_pre_hook(record(name))
        for name, m in model.named_modules()
        if isinstance(m, types)
    ]
    try:
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``||out - ref|| / ||ref||`` in float64."""
    ref = ref.detach().double()
    return float((out.detach().double() - ref).norm() / ref.norm())


def autocast_errors(
    model: nn.Module,
    x: torch.Tensor,
    types: tuple[type[nn.Module], ...],
    run: LayerRun = _call,
    dtype: torch.dtype = torch.bfloat16,
) -> dict[str, float]:
    """Relative error of each layer of ``types`` (by name, in forward order): ``run(layer, input)``
    under ``dtype`` autocast against ``layer(input)`` in float32, on the layer's float32 input
    from one forward of ``model`` on ``x``. ``run`` defaults to the layer's own forward."""
    errors = {}
    device = x.device.type
    with torch.no_grad():
        for name, (layer, inp) in layer_inputs(model, x, types).items():
            with torch.autocast(device, enabled=False):
                ref = layer(inp)
            with torch.autocast(device, dtype=dtype):
                out = run(layer, inp)
            errors[name] = relative_error(out, ref)
    return errors
