"""Forward hooks that record the E-I statistics of every layer (definitions in :mod:`.stats`).

Nothing is registered until a :class:`Recorder` is entered, and everything is removed when it
exits: with diagnostics off the model runs exactly as it would without this module. While
recording, each E-I layer's currents are recomputed from its input under ``no_grad`` (about one
extra input convolution per layer) and reduced to sums on the device; the host reads them once,
in :meth:`Recorder.summary`.

Layers are named after the spiking unit that holds them (``stem``, ``body.0.units.1``): the unit's
E-I layer gives the current statistics, its LIF the E firing statistics. E-I layers and spiking
neurons outside a unit (the readout, user models) are reported under their own names. Spikes
are counted by the package's one firing-rate monitor
(:class:`eisnn.train.monitor.FiringRateMonitor`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from eisnn.nn import is_spiking_neuron
from eisnn.train.monitor import FiringRateMonitor

from ..nn.ei import EILayer
from . import stats

CURRENT_SAMPLES = ("i_ee", "sub", "div", "i_int")


@dataclass
class LayerProbe:
    """What one diagnosed layer is made of: an E-I layer and/or the spiking neurons it feeds."""

    ei: EILayer | None = None
    lif: nn.Module | None = None


def diagnosed_layers(model: nn.Module) -> dict[str, LayerProbe]:
    """Every layer worth diagnosing, by name, in forward-definition order."""
    from ..models.blocks import SpikingUnit

    probes: dict[str, LayerProbe] = {}
    claimed: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, SpikingUnit):
            ei = next((m for m in module.current.modules() if isinstance(m, EILayer)), None)
            probes[name] = LayerProbe(ei, module.lif)
            claimed.update(id(m) for m in (ei, module.lif) if m is not None)
    for name, module in model.named_modules():
        if id(module) in claimed:
            continue
        if isinstance(module, EILayer):
            probes[name] = LayerProbe(ei=module)
        elif is_spiking_neuron(module):
            probes[name] = LayerProbe(lif=module)
    return probes


def _strided(values: torch.Tensor, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced entries of ``values`` (deterministic: no RNG is drawn)."""
    flat = values.detach().float().flatten()
    step = max(1, flat.numel() // limit)
    return flat[::step][:limit].cpu().numpy()


class Recorder:
    """``with Recorder(model) as rec: model(x)``; then ``rec.summary()``.

    ``samples > 0`` also keeps that many values of ``I_EE, sub, div, I_int`` per layer from the
    first batch seen, for histograms (:meth:`current_samples`).
    """

    def __init__(self, model: nn.Module, samples: int = 0) -> None:
        self.model = model
        self.probes = diagnosed_layers(model)
        self.samples = samples
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        neurons = {name: probe.lif for name, probe in self.probes.items() if probe.lif is not None}
        self.spikes = FiringRateMonitor(model, per_neuron=True, layers=neurons)
        self._sums: dict[str, torch.Tensor] = {}
        self._samples: dict[str, np.ndarray] = {}

    def __enter__(self) -> Recorder:
        for name, probe in self.probes.items():
            if probe.ei is not None:
                self._handles.append(probe.ei.register_forward_hook(self._ei_hook(name)))
        self.spikes.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.spikes.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _ei_hook(self, name: str):
        def record(layer: EILayer, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            with torch.no_grad():
                currents = layer.lateral_currents(inputs[0])
                sums = stats.current_sums(currents)
                self._sums[name] = sums + self._sums[name] if name in self._sums else sums
                if self.samples and not any(k.startswith(f"{name}/") for k in self._samples):
                    currents["i_int"] = output
                    for key in CURRENT_SAMPLES:
                        self._samples[f"{name}/{key}"] = _strided(currents[key], self.samples)

        return record

    def summary(self) -> dict[str, dict[str, float]]:
        """``{layer: {statistic: value}}`` over everything recorded (see :mod:`.stats`)."""
        out: dict[str, dict[str, float]] = {}
        counts = self.spikes.neuron_counts()
        for name, probe in self.probes.items():
            row: dict[str, float] = {}
            if name in counts:
                row.update(stats.firing_stats(*counts[name]))
            if name in self._sums:
                row.update(stats.current_stats(self._sums[name]))
            if probe.ei is not None:
                row["dale_pinned"] = stats.dale_pinned(probe.ei)
            if row:
                out[name] = row
        return out

    def current_samples(self) -> dict[str, np.ndarray]:
        """``{"<layer>/<i_ee|sub|div|i_int>": values}`` kept for histograms."""
        return dict(self._samples)


def weight_samples(model: nn.Module, limit: int = 4096) -> dict[str, np.ndarray]:
    """``{"<layer>/<w_ee|w_ie|w_ei|g_i|g_e|b_e>": values}`` of every E-I layer (strided
    subsample)."""
    return {
        f"{name}/{param}": _strided(getattr(probe.ei, param), limit)
        for name, probe in diagnosed_layers(model).items()
        if probe.ei is not None
        for param in ("w_ee", "w_ie", "w_ei", "g_i", "g_e", "b_e")
    }


class GradientNorms:
    """Mean over optimizer steps of the gradient L2 norm of each parameter kind
    (:func:`stats.parameter_kind`); call :meth:`accumulate` after ``backward`` (no host sync)."""

    def __init__(self, model: nn.Module) -> None:
        groups: dict[str, list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if param.requires_grad:
                groups.setdefault(stats.parameter_kind(model, name), []).append(param)
        self.groups = groups
        self.reset()

    def reset(self) -> None:
        self._sum: torch.Tensor | None = None
        self._steps = 0

    def accumulate(self) -> None:
        norms = stats.grad_sq_norms(self.groups).sqrt()
        self._sum = norms if self._sum is None else self._sum + norms
        self._steps += 1

    def means(self) -> dict[str, float]:
        """``{kind: mean gradient norm}`` since the last reset (empty before any step)."""
        if self._sum is None:
            return {}
        return dict(zip(self.groups, (self._sum / self._steps).tolist()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.groups)
