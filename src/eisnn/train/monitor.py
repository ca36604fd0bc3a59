"""Firing rates of spiking layers, read by forward hooks (the layers are not changed).

The one firing-rate monitor of the package: training, evaluation and the diagnostics
(:class:`eisnn.diagnostics.Recorder`) all read spikes through :class:`FiringRateMonitor`.

The rate of a layer is the mean of its output spikes over time, batch and neurons (of their
magnitude for signed spikes). The hooks only launch one reduction per layer and call: no host
synchronisation in the forward pass. With ``per_neuron=True`` they also accumulate the spike
count of every neuron over the leading time and batch dimensions ``[T, B, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from eisnn.nn import is_spiking_neuron


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's spiking-neuron modules (:func:`is_spiking_neuron`) by qualified name, in
    forward-definition order."""
    return {name: m for name, m in model.named_modules() if is_spiking_neuron(m)}


def spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Spikes per unit summed over the leading time and batch dims of ``[T, B, ...]``, flattened,
    as float64. The sum runs in float32, exact for spikes (small integers) and without a float64
    copy of the activations."""
    lead = spikes.shape[0] * spikes.shape[1]
    return spikes.detach().float().reshape(lead, -1).sum(0).double()


class FiringRateMonitor:
    """Context manager: ``with FiringRateMonitor(model) as mon: model(x)``; then ``mon.rates()``.

    ``layers`` (name -> module) chooses the modules to watch; by default every spiking neuron
    of ``model`` (:func:`spiking_layers`).
    """

    def __init__(
        self,
        model: nn.Module,
        per_neuron: bool = False,
        layers: Mapping[str, nn.Module] | None = None,
    ) -> None:
        self.layers = dict(layers) if layers is not None else spiking_layers(model)
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
                total = spike_counts(spikes)
                prev = self._neuron_sum.get(name)
                self._neuron_sum[name] = total if prev is None else prev + total
                lead = spikes.shape[0] * spikes.shape[1]
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

    def neuron_counts(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Per layer (needs ``per_neuron=True``): the spike count of every neuron (float64,
        flattened, on the device) and the number of time steps x samples it was counted over."""
        return {name: (s, self._neuron_count[name]) for name, s in self._neuron_sum.items()}

    def neuron_rates(self) -> dict[str, torch.Tensor]:
        """Per-neuron rate of each layer (needs ``per_neuron=True``): float32, flattened, on the
        CPU."""
        return {name: (s / n).float().cpu() for name, (s, n) in self.neuron_counts().items()}
