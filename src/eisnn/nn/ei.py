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
- ``dale="reparam"``: Dale's law by construction (``eisnn.nn.dale_parametrization``): each
  constrained tensor is ``softplus`` of a free parameter (state-dict key
  ``parametrizations.<name>.original``).

The layers take PyTorch's shape arguments positionally and the E-I options (``EIOptions``) as
keyword arguments only.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from .. import functional as EF
from .dale_parametrization import assign_, reparametrize_
from .ei_options import POPULATION_OPTIONS, EIOptions, inhibitory_count
from .inhibitory import InhibitoryPopulation

DALE_PARAMETERS: tuple[str, ...] = ("w_ee", "w_ie", "w_ei", "g_i", "g_e")
PADDING_MODES: tuple[str, ...] = ("same", "valid")
# options an E-I layer's repr leaves out: n_I is always shown, and the spiking I units show
# their own options in the repr of their population (``i_population``)
_OPTIONS_NOT_REPRESENTED: tuple[str, ...] = ("n_inhibitory", *POPULATION_OPTIONS)


class NotInitializedError(RuntimeError):
    """An E-I layer was used before the data-dependent E-I Init."""


def is_initialized(model: nn.Module) -> bool:
    """True when every E-I layer of ``model`` is initialized (always true without E-I layers)."""
    return all(m._initialized for m in model.modules() if isinstance(m, EILayer))


class EILayer(nn.Module):
    """What ``EIConv2d`` and ``EILinear`` share: the lateral I->E circuit and the init state.

    Subclasses define ``w_ee, w_ie`` and ``_drive(x, weight)`` (the input map) and ``fan_in``,
    then call ``_finish_parameters()``. ``options`` are the E-I options the layer was built with;
    each is also an attribute (``init`` as ``init_mode``; the I population's as ``i_population``).
    """

    fan_in: int
    dale_parameters = DALE_PARAMETERS

    def __init__(
        self, *, n_excitatory: int, options: EIOptions, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.options = options
        self.n_excitatory = n_excitatory
        self.n_inhibitory = inhibitory_count(n_excitatory, options.ei_ratio, options.n_inhibitory)
        self.ei_ratio = options.ei_ratio
        self.readout = options.readout
        self.stabilization = options.stabilization
        self.epsilon = options.epsilon
        self.ste = options.ste
        self.scale_w_ei_grad = options.scale_w_ei_grad
        self.init_mode = options.init
        self.dale = options.dale
        self.i_population = InhibitoryPopulation.create(
            options.inhibitory,
            options.tau_i,
            options.v_threshold_i,
            options.surrogate_i,
            options.alpha_i,
            options.time_steps,
        )
        self.w_ei = nn.Parameter(torch.empty(n_excitatory, self.n_inhibitory, **factory))
        self.g_i = nn.Parameter(torch.empty(self.n_inhibitory, **factory))
        self.g_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.b_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.register_buffer("initialized", torch.tensor(False, device=device))
        self.register_buffer(
            "init_scale", torch.tensor(float("nan"), device=device, dtype=torch.float64)
        )
        self.register_buffer(
            "init_gain", torch.tensor(float("nan"), device=device, dtype=torch.float64)
        )
        if (
            self.i_population is not None
        ):  # W_EI's init factor E[I_I] / E[s_I], and the leak g_L (spiking I units)
            self.register_buffer(
                "init_i_balance", torch.tensor(float("nan"), device=device, dtype=torch.float64)
            )
            self.register_buffer("i_leak", torch.tensor(float("nan"), device=device, dtype=dtype))
        self._initialized = False  # host mirror of the buffer: forward never reads a device tensor

    @property
    def time_dependent(self) -> bool:
        """Spiking I units have dynamics over the layer's own ``T`` steps
        (see ``blocks.is_time_dependent``)."""
        return self.i_population is not None

    def _finish_parameters(self) -> None:
        """Called by subclasses once ``w_ee, w_ie`` exist: data-free init, then the Dale policy."""
        self.reset_parameters()
        if self.dale == "reparam":
            reparametrize_(self, self.dale_parameters)

    def _assign(self, name: str, value: torch.Tensor | float) -> None:
        """Set a tensor's effective value (through the Dale parametrization when there is one)."""
        current = getattr(self, name)
        value = torch.as_tensor(value, dtype=current.dtype, device=current.device)
        assign_(self, name, value.expand_as(current))

    def _init_lateral(self) -> None:
        with torch.no_grad():
            self._assign("w_ei", 1.0 / self.n_inhibitory)
            self._assign("g_e", 1.0)
            self._assign("b_e", 0.0)

    def reset_parameters(self) -> None:
        """Data-free init: ``W_EI = 1/n_I, g_E = 1, b_E = 0``; ``W_EE, W_IE`` by |Kaiming uniform|,
        ``g_I = 1``.

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
        With spiking I units, ``W_EI`` is then rescaled from their output
        (``_balance_spiking_inhibition``).
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
        the paper's ``E[I_I]``) restores both expectations: ``E[W_EI s_I] = E[I_EE]``,
        ``E[div] = g_I m``.
        """
        _, i_i = self.currents(x)
        paper_mean = i_i.double().mean()
        if float(paper_mean) <= 0:
            raise ValueError(
                f"ei_init: {type(self).__name__} got no drive for its spiking I units "
                "on the first batch"
            )
        threshold = self.i_population.lif.v_threshold
        self._assign("w_ie", self.w_ie * (threshold / float(paper_mean)))
        s_i = self.i_population(i_i * (threshold / paper_mean).to(i_i.dtype))
        rate = s_i.double().mean()
        if float(rate) <= 0:
            raise ValueError(
                f"ei_init: the spiking I units of {type(self).__name__} stay silent "
                f"on the first batch at mean drive = threshold {threshold}; raise tau_i"
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
        """``[I_EE; I_I]`` (channels ``n_E + n_I``) from one input map with the stacked weight
        ``[W_EE; W_IE]``."""
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
        """``I_int`` of the excitatory units for input ``x``; under autocast with the precision
        policy of ``functional.precision`` (float32 output)."""
        self._check_initialized()
        if EF.autocast_active(x):
            return self._forward_autocast(x)
        currents = self.stacked_currents(x)
        if self.i_population is None:
            return self.integrate(currents)
        return self.integrate(currents, self.i_population(currents[:, self.n_excitatory :]))

    def _node_w_ei(self) -> torch.Tensor:
        """``W_EI`` as the node sees it: its gradient divided by the fan-in when
        ``scale_w_ei_grad``."""
        return EF.divide_grad(self.w_ei, float(self.fan_in)) if self.scale_w_ei_grad else self.w_ei

    def _forward_autocast(self, x: torch.Tensor) -> torch.Tensor:
        """The forward under autocast: the input map in the autocast dtype with the folded weight
        ``[W_EE - W_EI W_IE; W_IE]``, the node in float32 (``functional.precision``). Spiking I
        units cannot be folded: the unfolded map, then the whole node in float32."""
        w_ei = self._node_w_ei()
        options = {
            "readout": self.readout,
            "stabilization": self.stabilization,
            "epsilon": self.epsilon,
            "ste": self.ste,
        }
        params = (self.n_excitatory, w_ei, self.g_i, self.g_e, self.b_e)
        if self.i_population is None:
            currents = self._drive(x, EF.folded_weight(self.w_ee, self.w_ie, w_ei))
            return EF.ei_integrate(currents, *params, balanced=True, **options)
        currents = self.stacked_currents(x)
        s_i = self.i_population(currents[:, self.n_excitatory :])
        leak = None if self.readout else self.i_leak
        return EF.ei_integrate_balanced(
            currents, *params, s_i=s_i, balanced=False, leak=leak, **options
        )

    def integrate(self, currents: torch.Tensor, s_i: torch.Tensor | None = None) -> torch.Tensor:
        """``I_int`` from the stacked ``[I_EE; I_I]`` (``functional.ei_integrate``). With the spikes
        ``s_i`` of spiking I units, shunting acts on top of a fixed leak conductance ``g_L > 0``
        (a buffer set by the E-I Init), so a step without I spikes does not divide by zero:
        ``I_int = g_E (I_EE - W_EI s_I) / (g_L + W_EI (g_I s_I)) + b_E`` (``stabilization`` is not
        used then)."""
        w_ei = self._node_w_ei()
        return EF.ei_integrate(
            currents,
            self.n_excitatory,
            w_ei,
            self.g_i,
            self.g_e,
            self.b_e,
            s_i=s_i,
            leak=None if s_i is None or self.readout else self.i_leak,
            readout=self.readout,
            stabilization=self.stabilization,
            epsilon=self.epsilon,
            ste=self.ste,
        )

    def lateral_currents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``I_EE``, the I units' output ``s_I``, ``sub`` and ``div`` (before stabilization) for
        input ``x``, with the maths of ``forward`` (for diagnostics; no gradient scaling)."""
        i_ee, i_i = self.currents(x)
        s_i = i_i if self.i_population is None else self.i_population(i_i)
        sub, div = EF.lateral_inhibition(self.w_ei, self.g_i, s_i)
        return {"i_ee": i_ee, "s_i": s_i, "sub": sub, "div": div}

    def _ei_repr(self) -> str:
        """``n_I`` and the E-I options that differ from their defaults."""
        changed = self.options.changed()
        shown = [f"{k}={v!r}" for k, v in changed.items() if k not in _OPTIONS_NOT_REPRESENTED]
        return ", ".join([f"n_I={self.n_inhibitory}", *shown])


def _conv_padding(
    padding: str | int | tuple[int, int], stride: tuple[int, int]
) -> str | tuple[int, int]:
    """``padding`` as ``nn.Conv2d`` takes it: a pair, or ``"same"`` (unit stride only) or
    ``"valid"`` (no padding)."""
    if not isinstance(padding, str):
        return _pair(padding)
    if padding not in PADDING_MODES:
        raise ValueError(
            f"padding must be an int, a pair or one of {list(PADDING_MODES)}, got {padding!r}"
        )
    if padding == "same" and stride != (1, 1):
        raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
    return padding


class EIConv2d(EILayer):
    """E-I convolution: ``W_EE [n_E, C, kh, kw]``, ``W_IE [n_I, C, kh, kw]``, ``W_EI`` as a 1x1 mix.

    ``kernel_size, stride, padding, dilation`` as in ``nn.Conv2d`` (an int or a pair; ``padding``
    also ``"same"`` or ``"valid"``). ``groups`` must be 1: each I unit pools over all input
    channels. ``options``: the E-I options (``EIOptions``), keyword-only.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        *,
        device: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> None:
        if groups != 1:
            raise ValueError(
                f"EIConv2d needs groups=1 (each I unit pools over all input channels), got {groups}"
            )
        ei_options = EIOptions.of(type(self).__name__, options)
        super().__init__(n_excitatory=out_channels, options=ei_options, device=device, dtype=dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _conv_padding(padding, self.stride)
        self.dilation = _pair(dilation)
        self.groups = groups
        kh, kw = self.kernel_size
        self.fan_in = in_channels * kh * kw
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_channels, kh, kw, **factory))
        self._finish_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        """Like ``nn.Conv2d``: stride, padding and dilation only where they are not the default."""
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            text += f", stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        return f"{text}, {self._ei_repr()}"


class EILinear(EILayer):
    """E-I fully connected layer: ``W_EE [n_E, d]``, ``W_IE [n_I, d]``, ``W_EI [n_E, n_I]``.

    ``options``: the E-I options (``EIOptions``), keyword-only.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        device: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> None:
        ei_options = EIOptions.of(type(self).__name__, options)
        super().__init__(n_excitatory=out_features, options=ei_options, device=device, dtype=dtype)
        self.in_features, self.out_features = in_features, out_features
        self.fan_in = in_features
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_features, **factory))
        self._finish_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, {self._ei_repr()}"
        )
