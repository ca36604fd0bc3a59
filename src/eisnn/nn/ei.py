"""E-I layers: one module per layer holding ``W_EE, W_IE, W_EI, g_I, g_E, b_E`` (SPEC section 1).

A layer maps its input ``x`` (merged ``[T*B, ...]``, non-negative) to the integrated current of
its excitatory units. One convolution (or linear map) with ``[W_EE; W_IE]`` stacked produces
``I_EE`` and ``I_I`` together; ``functional.ei_integrate`` does the rest.

The data-dependent E-I Init (``eisnn.ei_init``) sets ``W_EE, W_IE, g_I``; whether it ran is the
buffer ``initialized`` (saved in the state dict), and the values it derived are the buffers
``init_scale`` (mean of the exponential weights) and ``init_gain`` (``g_I``).

Options beyond the paper (all off by default; the paper's numbers are unchanged then):

- ``n_inhibitory``: the number of I units given directly (else ``max(1, floor(n_E / ei_ratio))``).
- ``inhibitory="lif"``: spiking I units (``eisnn.nn.inhibitory``): the I population integrates
  ``I_I`` over the ``time_steps`` steps and its spikes ``s_I`` (not ``I_I``) drive the
  subtractive and divisive paths. The layer then needs ``[T*B, ...]`` with ``T = time_steps``.
- ``dale="reparam"``: Dale's law by construction (``eisnn.dale``): each constrained tensor is
  ``softplus`` of a free parameter (state-dict key ``parametrizations.<name>.original``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import dale as dale_policy
from .. import functional as EF
from .inhibitory import InhibitoryPopulation

DALE_PARAMETERS: tuple[str, ...] = ("w_ee", "w_ie", "w_ei", "g_i", "g_e")
INIT_MODES: tuple[str, ...] = ("ei", "standard")


def inhibitory_count(n_excitatory: int, ei_ratio: float, n_inhibitory: int | None = None) -> int:
    """``n_I = max(1, floor(n_E / ratio))``: the paper's ``n_E // ratio``, at least one I unit
    (any real ratio >= 1: 100 E units at ratio 3 give 33 I units, at ratio 16 give 6).
    ``n_inhibitory`` given directly wins over the ratio."""
    if n_inhibitory is not None:
        if n_inhibitory < 1:
            raise ValueError(f"n_inhibitory must be >= 1, got {n_inhibitory}")
        return int(n_inhibitory)
    if ei_ratio < 1:
        raise ValueError(f"ei_ratio must be >= 1, got {ei_ratio}")
    return max(1, math.floor(n_excitatory / ei_ratio))


class NotInitializedError(RuntimeError):
    """An E-I layer was used before the data-dependent E-I Init."""


class EILayer(nn.Module):
    """What ``EIConv2d`` and ``EILinear`` share: the lateral I->E circuit and the init state.

    Subclasses define ``w_ee, w_ie`` and ``_drive(x, weight)`` (the input map) and ``fan_in``,
    then call ``_finish_parameters()``.
    """

    fan_in: int
    dale_parameters = DALE_PARAMETERS

    def __init__(
        self,
        n_excitatory: int,
        ei_ratio: float,
        readout: bool,
        stabilization: str,
        epsilon: float,
        ste: bool,
        scale_w_ei_grad: bool,
        init: str,
        device: Any,
        dtype: Any,
        n_inhibitory: int | None = None,
        inhibitory: str = "relu",
        tau_i: float = 2.0,
        v_threshold_i: float = 1.0,
        surrogate_i: str = "sigmoid",
        alpha_i: float = 4.0,
        time_steps: int | None = None,
        dale: str = "clamp",
    ) -> None:
        super().__init__()
        if stabilization not in EF.STABILIZATIONS:
            raise ValueError(f"stabilization must be one of {list(EF.STABILIZATIONS)}, got {stabilization!r}")
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {list(INIT_MODES)}, got {init!r}")
        factory = {"device": device, "dtype": dtype}
        self.n_excitatory = n_excitatory
        self.n_inhibitory = inhibitory_count(n_excitatory, ei_ratio, n_inhibitory)
        self.ei_ratio = ei_ratio
        self.readout = readout
        self.stabilization = stabilization
        self.epsilon = epsilon
        self.ste = ste
        self.scale_w_ei_grad = scale_w_ei_grad
        self.init_mode = init
        self.dale = dale_policy.check_policy(dale)
        self.i_population = InhibitoryPopulation.create(inhibitory, tau_i, v_threshold_i, surrogate_i, alpha_i, time_steps)
        self.w_ei = nn.Parameter(torch.empty(n_excitatory, self.n_inhibitory, **factory))
        self.g_i = nn.Parameter(torch.empty(self.n_inhibitory, **factory))
        self.g_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.b_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.register_buffer("initialized", torch.tensor(False, device=device))
        self.register_buffer("init_scale", torch.tensor(float("nan"), device=device, dtype=torch.float64))
        self.register_buffer("init_gain", torch.tensor(float("nan"), device=device, dtype=torch.float64))
        if self.i_population is not None:  # W_EI's init factor E[I_I] / E[s_I], and the leak g_L (spiking I units)
            self.register_buffer("init_i_balance", torch.tensor(float("nan"), device=device, dtype=torch.float64))
            self.register_buffer("i_leak", torch.tensor(float("nan"), device=device, dtype=dtype))
        self._initialized = False  # host mirror of the buffer: forward never reads a device tensor

    @property
    def time_dependent(self) -> bool:
        """Spiking I units have dynamics over the layer's own ``T`` steps (see ``blocks.is_time_dependent``)."""
        return self.i_population is not None

    def _finish_parameters(self) -> None:
        """Called by subclasses once ``w_ee, w_ie`` exist: data-free init, then the Dale policy."""
        self.reset_parameters()
        if self.dale == "reparam":
            dale_policy.reparametrize_(self, self.dale_parameters)

    def _assign(self, name: str, value: torch.Tensor | float) -> None:
        """Set a tensor's effective value (through the Dale parametrization when there is one)."""
        current = getattr(self, name)
        dale_policy.assign_(self, name, torch.as_tensor(value, dtype=current.dtype, device=current.device).expand_as(current))

    def _init_lateral(self) -> None:
        with torch.no_grad():
            self._assign("w_ei", 1.0 / self.n_inhibitory)
            self._assign("g_e", 1.0)
            self._assign("b_e", 0.0)

    def reset_parameters(self) -> None:
        """Data-free init: ``W_EI = 1/n_I, g_E = 1, b_E = 0``; ``W_EE, W_IE`` by |Kaiming uniform|, ``g_I = 1``.

        With ``init="standard"`` this is the final init (the paper's ablation without E-I Init);
        with ``init="ei"`` the layer stays unusable until ``eisnn.ei_init`` runs.
        """
        self._init_lateral()
        with torch.no_grad():
            for name in ("w_ee", "w_ie"):
                w = torch.empty_like(getattr(self, name))
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                self._assign(name, w.abs_())
            self._assign("g_i", 1.0)
        self._set_initialized(self.init_mode == "standard")

    def _set_initialized(self, value: bool) -> None:
        self.initialized.fill_(value)
        self._initialized = value

    def ei_init_from(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """E-I Init (SPEC section 3) from this layer's actual input ``x`` (the whole merged batch).

        ``scale = sqrt(Var_x / (d (E_x2 + Var_x)))``, ``W_EE, W_IE ~ Exp(mean=scale)``,
        ``g_I = sqrt(E_x2 + Var_x) / (sqrt(d) E_x)``, ``W_EI = 1/n_I``, ``g_E = 1``, ``b_E = 0``.
        With spiking I units, ``W_EI`` is then rescaled from their output (``_balance_spiking_inhibition``).
        """
        with torch.no_grad():
            x64 = x.detach().double()
            e_x = x64.mean()
            var_x = x64.var(dim=0).mean()
            e_x2 = (x64 * x64).mean()
            d = self.fan_in
            scale = torch.sqrt(var_x / (d * (e_x2 + var_x)))
            gain = torch.sqrt(e_x2 + var_x) / (math.sqrt(d) * e_x)
            self._init_lateral()
            for name in ("w_ee", "w_ie"):
                w = torch.empty_like(getattr(self, name))
                self._assign(name, w.exponential_(1.0, generator=generator).mul_(scale.to(w.dtype)))
            self._assign("g_i", float(gain))
            self.init_scale.fill_(float(scale))
            self.init_gain.fill_(float(gain))
            if self.i_population is not None:
                self._balance_spiking_inhibition(x.detach())
        self._set_initialized(True)

    def _balance_spiking_inhibition(self, x: torch.Tensor) -> None:
        """E-I Init for spiking I units, from the I population's actual output on the first batch.

        The paper's init gives ``E[W_EI @ I_I] = E[I_EE]`` (the same weight law on both paths) and
        ``E[div] = g_I E[I_I]``. With spiking units: ``W_IE`` is first scaled so that the mean drive
        ``E[I_I]`` equals the I threshold (the paper's scale can leave them silent); then, from the
        spikes ``s_I`` of that drive on the batch, ``W_EI = c / n_I`` with ``c = m / E[s_I]`` (``m``
        the paper's ``E[I_I]``) restores both expectations: ``E[W_EI s_I] = E[I_EE]``, ``E[div] = g_I m``.
        """
        _, i_i = self.currents(x)
        paper_mean = i_i.double().mean()
        if float(paper_mean) <= 0:
            raise ValueError(f"ei_init: {type(self).__name__} got no drive for its spiking I units on the first batch")
        threshold = self.i_population.lif.v_threshold
        self._assign("w_ie", self.w_ie * (threshold / float(paper_mean)))
        s_i = self.i_population(i_i * (threshold / paper_mean).to(i_i.dtype))
        rate = s_i.double().mean()
        if float(rate) <= 0:
            raise ValueError(
                f"ei_init: the spiking I units of {type(self).__name__} stay silent on the first batch at mean drive "
                f"= threshold {threshold}; raise tau_i"
            )
        balance = paper_mean / rate
        self._assign("w_ei", float(balance) / self.n_inhibitory)
        self.init_i_balance.fill_(float(balance))
        self.i_leak.fill_(float(self.init_gain * paper_mean))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._initialized = bool(self.initialized)

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def stacked_currents(self, x: torch.Tensor) -> torch.Tensor:
        """``[I_EE; I_I]`` (channels ``n_E + n_I``) from one input map with the stacked weight ``[W_EE; W_IE]``."""
        return self._drive(x, EF.stack_weights(self.w_ee, self.w_ie))

    def currents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(I_EE, I_I)``: the two parts of ``stacked_currents``."""
        return EF.split_currents(self.stacked_currents(x), self.n_excitatory)

    def _check_initialized(self) -> None:
        if not self._initialized:
            raise NotInitializedError(
                f"{type(self).__name__} is not initialized: call eisnn.ei_init(model, first_batch) "
                "before training or evaluating (or load a trained state dict)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_initialized()
        currents = self.stacked_currents(x)
        if self.i_population is None:
            return self.integrate(currents)
        return self.integrate(currents, self.i_population(currents[:, self.n_excitatory :]))

    def integrate(self, currents: torch.Tensor, s_i: torch.Tensor | None = None) -> torch.Tensor:
        """``I_int`` from the stacked ``[I_EE; I_I]`` (``functional.ei_integrate``). With the spikes
        ``s_i`` of spiking I units, shunting acts on top of a fixed leak conductance ``g_L > 0``
        (a buffer set by the E-I Init), so a step without I spikes does not divide by zero:
        ``I_int = g_E (I_EE - W_EI s_I) / (g_L + W_EI (g_I s_I)) + b_E`` (``stabilization`` is not
        used then)."""
        w_ei = EF.divide_grad(self.w_ei, float(self.fan_in)) if self.scale_w_ei_grad else self.w_ei
        return EF.ei_integrate(
            currents, self.n_excitatory, w_ei, self.g_i, self.g_e, self.b_e,
            s_i=s_i, leak=None if s_i is None or self.readout else self.i_leak,
            readout=self.readout, stabilization=self.stabilization, epsilon=self.epsilon, ste=self.ste,
        )

    def lateral_currents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``I_EE``, the I units' output ``s_I``, ``sub`` and ``div`` (before stabilization) for
        input ``x``, with the maths of ``forward`` (for diagnostics; no gradient scaling)."""
        i_ee, i_i = self.currents(x)
        s_i = i_i if self.i_population is None else self.i_population(i_i)
        sub, div = EF.lateral_inhibition(self.w_ei, self.g_i, s_i)
        return {"i_ee": i_ee, "s_i": s_i, "sub": sub, "div": div}

    def _ei_repr(self) -> str:
        extra = ", readout=True" if self.readout else ""
        if self.stabilization != "adaptive":
            extra += f", stabilization={self.stabilization!r}"
        if not self.ste:
            extra += ", ste=False"
        if not self.scale_w_ei_grad:
            extra += ", scale_w_ei_grad=False"
        if self.init_mode != "ei":
            extra += f", init={self.init_mode!r}"
        if self.i_population is not None:
            extra += ", inhibitory='lif'"
        if self.dale != "clamp":
            extra += f", dale={self.dale!r}"
        return f"n_I={self.n_inhibitory}{extra}"


class EIConv2d(EILayer):
    """E-I convolution: ``W_EE [n_E, C, kh, kw]``, ``W_IE [n_I, C, kh, kw]``, ``W_EI`` as a 1x1 mix."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        ei_ratio: float = 4,
        readout: bool = False,
        stabilization: str = "adaptive",
        epsilon: float = 1e-8,
        ste: bool = True,
        scale_w_ei_grad: bool = True,
        init: str = "ei",
        device: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(out_channels, ei_ratio, readout, stabilization, epsilon, ste, scale_w_ei_grad, init, device, dtype, **options)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = stride
        self.padding = padding
        self.fan_in = in_channels * kh * kw
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_channels, kh, kw, **factory))
        self._finish_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, {self._ei_repr()}"
        )


class EILinear(EILayer):
    """E-I fully connected layer: ``W_EE [n_E, d]``, ``W_IE [n_I, d]``, ``W_EI [n_E, n_I]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        ei_ratio: float = 4,
        readout: bool = False,
        stabilization: str = "adaptive",
        epsilon: float = 1e-8,
        ste: bool = True,
        scale_w_ei_grad: bool = True,
        init: str = "ei",
        device: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(out_features, ei_ratio, readout, stabilization, epsilon, ste, scale_w_ei_grad, init, device, dtype, **options)
        self.in_features, self.out_features = in_features, out_features
        self.fan_in = in_features
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_features, **factory))
        self._finish_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self._ei_repr()}"
