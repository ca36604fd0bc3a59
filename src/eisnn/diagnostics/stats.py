"""The quantities the diagnostics report, as pure tensor functions (no hooks, no state).

Definitions (one E-I layer, input ``x``, currents as in SPEC section 1)::

    I_EE, s_I, sub, div = layer.lateral_currents(x)   # functional.lateral_inhibition
    sub = W_EI @ s_I                    # subtractive inhibition
    div = W_EI @ (g_I * s_I)            # divisive inhibition, before stabilization

- E units are the LIF neurons fed by the layer; a *unit* is one neuron (channel, and position for
  a convolution). Its rate is its mean spike count per time step over everything recorded.
  *silent*: share of units that never fired; *saturated*: share that fired at every step.
- I units are instantaneous ReLU units (the paper's fast-spiking interneurons): their activity
  ``s_I`` is ``I_I`` (``ReLU(I_I) == I_I`` on the non-negative inputs of an E-I layer);
  ``i_active`` is the share of positive entries of ``s_I``, ``i_mean`` its mean. With spiking I
  units (``inhibitory="lif"``) ``s_I`` are their spikes (``i_mean`` is then their firing rate), and
  ``sub``, ``div`` use ``s_I`` in place of ``I_I`` (``div`` without the leak).
- ``balance = mean(sub) / mean(I_EE)``: how much of the excitatory drive inhibition subtracts.
- ``div_zero``: share of entries with ``div == 0``, i.e. where the adaptive stabilization replaced
  a zero by the row's smallest positive value (under ``epsilon``/``none`` the entries that only
  epsilon, or nothing, guards). ``div_empty``: share of rows (one time step of one sample)
  without any positive entry, whose current becomes ``b_E``.
- ``dale_pinned``: share of Dale-constrained values (``W_EE, W_IE, W_EI, g_I, g_E``) that are
  exactly 0.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.ei import DALE_PARAMETERS, EILayer


def current_sums(currents: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sums that make the E-I statistics additive over batches (float64, on the device, no sync):

    ``[count, sum I_EE, sum sub, #(s_I > 0), sum s_I, #s_I, sum div, sum div^2, #(div == 0),
    #rows without positive div, #rows]``.
    """
    i_ee, s_i, sub, div = (currents[k].detach().double() for k in ("i_ee", "s_i", "sub", "div"))
    rows = div.shape[0]
    empty = (div.reshape(rows, -1) > 0).sum(1) == 0
    sizes = i_ee.new_tensor([i_ee.numel(), s_i.numel(), rows])
    return torch.stack(
        [
            sizes[0],
            i_ee.sum(),
            sub.sum(),
            (s_i > 0).sum().double(),
            s_i.sum(),
            sizes[1],
            div.sum(),
            (div * div).sum(),
            (div == 0).sum().double(),
            empty.sum().double(),
            sizes[2],
        ]
    )


def current_stats(sums: torch.Tensor) -> dict[str, float]:
    """The E-I statistics from accumulated :func:`current_sums` (one host transfer)."""
    n, s_ee, s_sub, i_pos, i_sum, n_i, d_sum, d_sq, d_zero, empty, rows = sums.tolist()
    div_mean = d_sum / n
    return {
        "balance": s_sub / s_ee if s_ee != 0 else float("nan"),
        "i_active": i_pos / n_i,
        "i_mean": i_sum / n_i,
        "div_mean": div_mean,
        "div_std": max(d_sq / n - div_mean * div_mean, 0.0) ** 0.5,
        "div_zero": d_zero / n,
        "div_empty": empty / rows,
    }


def firing_stats(counts: torch.Tensor, steps: int) -> dict[str, float]:
    """``e_rate, silent, saturated`` from per-unit spike counts over ``steps`` (time steps x
    samples), as :meth:`eisnn.train.monitor.FiringRateMonitor.neuron_counts` gives them."""
    rate, silent, saturated = torch.stack(
        [counts.mean() / steps, (counts == 0).double().mean(), (counts >= steps).double().mean()]
    ).tolist()
    return {"e_rate": rate, "silent": silent, "saturated": saturated}


def dale_pinned(layer: EILayer) -> float:
    """Share of ``layer``'s Dale-constrained values that are exactly zero."""
    params = [getattr(layer, name).detach() for name in DALE_PARAMETERS]
    zeros = torch.stack([(p == 0).sum() for p in params]).sum()
    return float(zeros) / sum(p.numel() for p in params)


def parameter_kind(model: nn.Module, name: str) -> str:
    """Kind of parameter ``name``: ``w_ee, w_ie, w_ei, g_i, g_e, b_e`` in E-I layers, else
    ``<module class>.<attribute>`` (``conv2d.weight``, ``batchnorm2d.bias``, ``linear.weight``)."""
    owner, _, attr = name.rpartition(".")
    if (
        ".parametrizations." in f".{name}"
    ):  # a reparametrized tensor: <owner>.parametrizations.<attr>.original
        owner, _, rest = f".{name}".partition(".parametrizations.")
        owner, attr = owner[1:], rest.partition(".")[0]
    module = model.get_submodule(owner) if owner else model
    return attr if isinstance(module, EILayer) else f"{type(module).__name__.lower()}.{attr}"


def grad_sq_norms(groups: dict[str, list[nn.Parameter]]) -> torch.Tensor:
    """Squared L2 norm of the gradients of each group (stacked, on the device, no sync)."""
    out = []
    for params in groups.values():
        grads = [p.grad.detach().float() for p in params if p.grad is not None]
        out.append(
            torch.stack([g.square().sum() for g in grads]).sum()
            if grads
            else torch.zeros((), device=params[0].device)
        )
    return torch.stack(out)
