"""Firing rates of every spiking layer, read by forward hooks (the layers are not changed).

The rate of a layer is the mean of its output spikes over time, batch and neurons. The hooks
only launch one reduction per layer and call: no host synchronisation in the forward pass.
With ``per_neuron=True`` they also accumulate the rate of every neuron (mean over the
leading time and batch dimensions ``[T, B, ...]``), for histograms.
"""

from __future__ import annotations

import torch
from torch import nn

from eisnn.nn import is_spiking_neuron


def lif_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's spiking-neuron modules (``eisnn.nn.is_spiking_neuron``) by qualified name, in
    forward-definition order."""
    return {name: m for name, m in model.named_modules() if is_spiking_neuron(m)}


class FiringRateMonitor:
    """Context manager: ``with FiringRateMonitor(model) as mon: model(x)``; then ``mon.rates()``."""

    def __init__(self, model: nn.Module, per_neuron: bool = False) -> None:
        self.layers = lif_layers(model)
        self.per_neuron = per_neuron
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self.reset()

    def reset(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._count: dict[str, int] = {}
        self._last: dict[str, torch.Tensor] = {}
        self._neuron_sum: dict[str, torch.Tensor] = {}
        self._neuron_count: dict[str, int] = {}

    def __enter__(self) -> FiringRateMonitor:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: object, out: torch.Tensor) -> None:
            spikes = out.detach().abs() if getattr(module, "signed", False) else out.detach()
            rate = spikes.float().mean()
            self._last[name] = rate
            weighted = rate * spikes.numel()
            self._sum[name] = self._sum[name] + weighted if name in self._sum else weighted
            self._count[name] = self._count.get(name, 0) + spikes.numel()
            if self.per_neuron:
                lead = spikes.shape[0] * spikes.shape[1]
                total = spikes.float().reshape(lead, *spikes.shape[2:]).sum(0)
                prev = self._neuron_sum.get(name)
                self._neuron_sum[name] = total if prev is None else prev + total
                self._neuron_count[name] = self._neuron_count.get(name, 0) + lead
        return record

    def last_mean(self) -> torch.Tensor | None:
        """Mean over layers of the latest call's rates (a tensor; no sync), None before any call."""
        if not self._last:
            return None
        return torch.stack(list(self._last.values())).mean()

    def rates(self) -> dict[str, float]:
        """Mean rate of each layer over everything seen since the last reset."""
        return {name: (self._sum[name] / self._count[name]).item() for name in self._sum}

    def neuron_rates(self) -> dict[str, torch.Tensor]:
        """Per-neuron rate of each layer (needs ``per_neuron=True``), on the CPU."""
        return {name: (s / self._neuron_count[name]).cpu() for name, s in self._neuron_sum.items()}
