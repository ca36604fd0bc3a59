"""Evaluation: cross-entropy, top-1 / top-5 accuracy (%) and per-layer firing rates."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from eisnn.losses import get_loss
from eisnn.train.config import ConfigError
from eisnn.train.monitor import FiringRateMonitor


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    samples: int
    firing_rates: dict[str, float] = field(default_factory=dict)
    neuron_rates: dict[str, torch.Tensor] = field(default_factory=dict)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp == 'bf16'``, else nothing."""
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def topk_correct(
    logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]
) -> list[torch.Tensor]:
    """Number of samples whose label is among the ``k`` largest logits, for each ``k``
    (``k`` capped at the number of classes)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target[:, None]
    return [hit[:, : min(k, kmax)].any(dim=1).sum() for k in ks]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    amp: str = "none",
    per_neuron: bool = False,
    loss: str = "cross_entropy",
    sum_over_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> EvalResult:
    """One pass over ``loader`` in eval mode; sums stay on the device until the end. In a
    distributed run ``loader`` holds this rank's part of the set and ``sum_over_ranks`` (an
    all-reduce) combines the sums of all parts: loss, hits, samples, and firing rates weighted by
    samples."""
    loss_fn = get_loss(loss)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    hits = torch.zeros(2, device=device, dtype=torch.int64)
    samples = 0
    with FiringRateMonitor(model, per_neuron=per_neuron) as monitor:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(x)
            logits = logits.float()
            loss_sum += loss_fn(logits, y).double() * y.shape[0]
            hits += torch.stack(topk_correct(logits, y, (1, 5)))
            samples += y.shape[0]
    model.train(was_training)
    rates, neuron_rates = monitor.rates(), monitor.neuron_rates()
    if sum_over_ranks is not None:
        loss_sum, hits, samples, rates, neuron_rates = _combine(
            sum_over_ranks,
            device,
            loss_sum,
            hits,
            samples,
            list(monitor.layers),
            rates,
            neuron_rates,
        )
    if samples == 0:
        raise ValueError("evaluation set is empty")
    top1, top5 = (100.0 * hits.double() / samples).tolist()
    return EvalResult(
        loss=loss_sum.item() / samples,
        top1=top1,
        top5=top5,
        samples=samples,
        firing_rates=rates,
        neuron_rates=neuron_rates,
    )


def _combine(
    sum_over_ranks: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    loss_sum: torch.Tensor,
    hits: torch.Tensor,
    samples: int,
    layers: list[str],
    rates: dict[str, float],
    neuron_rates: dict[str, torch.Tensor],
):
    """All ranks' evaluation sums: a rate ``r_k`` over ``n_k`` samples enters as ``r_k n_k``, the
    combined rate is ``sum r_k n_k / sum n_k`` (every sample has the same number of neurons and
    steps)."""
    local = [loss_sum.item(), *hits.tolist(), samples, float(samples == 0)]
    local += [rates.get(name, 0.0) * samples for name in layers]
    total = sum_over_ranks(torch.tensor(local, dtype=torch.float64, device=device)).tolist()
    loss, hit1, hit5, n, empty_ranks = total[:5]
    if empty_ranks:
        raise ConfigError(
            f"the test set gives no sample to {int(empty_ranks)} process(es): it has "
            "fewer samples than processes"
        )
    combined = {name: r / n for name, r in zip(layers, total[5:]) if name in rates}
    per_neuron = {
        name: (sum_over_ranks((neuron_rates[name] * samples).to(device, torch.float64)) / n)
        .float()
        .cpu()
        for name in layers
        if name in neuron_rates
    }
    hits = torch.tensor([hit1, hit5], dtype=torch.float64)
    return torch.tensor(loss, dtype=torch.float64), hits, int(n), combined, per_neuron


@dataclass
class EvalReport:
    """What ``eisnn eval`` prints: the model, its data and an :class:`EvalResult`."""

    source: str
    model: str
    dataset: str
    T: int
    result: EvalResult

    def text(self) -> str:
        r = self.result
        lines = [
            f"{self.source}: {self.model} on {self.dataset} test set "
            f"(T={self.T}, {r.samples} samples)",
            f"top-1 {r.top1:.2f}%  top-5 {r.top5:.2f}%  loss {r.loss:.4f}",
            "firing rate per LIF layer (spikes per neuron per time step):",
        ]
        width = max((len(name) for name in r.firing_rates), default=0)
        lines += [f"  {name:<{width}}  {rate:.4f}" for name, rate in r.firing_rates.items()]
        return "\n".join(lines)


def evaluate_source(
    source: str, data_dir: str | None = None, overrides: Iterable[str] = ()
) -> EvalReport:
    """Evaluate an eisnn checkpoint or a reference checkpoint/folder on its dataset's test split."""
    from eisnn.train.convert import load_model
    from eisnn.train.factory import build_loader, prepare_device

    model, cfg = load_model(source, overrides, data_dir)
    device = prepare_device(cfg)
    loader, _ = build_loader(cfg, False, device)
    if cfg.limit_batches is not None:
        loader = list(itertools.islice(loader, cfg.limit_batches))
    result = evaluate(model.to(device), loader, device, cfg.amp, loss=cfg.loss)
    return EvalReport(str(source), cfg.model, cfg.dataset, cfg.T, result)
