"""E-I layers: one module per layer holding ``W_EE, W_IE, W_EI, g_I, g_E, b_E`` (SPEC section 1).

A layer maps its input ``x`` (merged ``[T*B, ...]``, non-negative) to the integrated current of
its excitatory units. One convolution (or linear map) with ``[W_EE; W_IE]`` stacked produces
``I_EE`` and ``I_I`` together; ``functional.ei_integrate`` does the rest.

The data-dependent E-I Init (``eisnn.ei_init``) sets ``W_EE, W_IE, g_I``; whether it ran is the
buffer ``initialized`` (saved in the state dict), and the values it derived are the buffers
``init_scale`` (mean of the exponential weights) and ``init_gain`` (``g_I``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import functional as EF

DALE_PARAMETERS: tuple[str, ...] = ("w_ee", "w_ie", "w_ei", "g_i", "g_e")
INIT_MODES: tuple[str, ...] = ("ei", "standard")


def inhibitory_count(n_excitatory: int, ei_ratio: float) -> int:
    """``n_I = max(1, floor(n_E / ratio))``: the paper's ``n_E // ratio``, at least one I unit."""
    if ei_ratio < 1:
        raise ValueError(f"ei_ratio must be >= 1, got {ei_ratio}")
    return max(1, int(n_excitatory // ei_ratio))


class NotInitializedError(RuntimeError):
    """An E-I layer was used before the data-dependent E-I Init."""


class EILayer(nn.Module):
    """What ``EIConv2d`` and ``EILinear`` share: the lateral I->E circuit and the init state.

    Subclasses define ``w_ee, w_ie`` and ``_drive(x, weight)`` (the input map) and ``fan_in``.
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
    ) -> None:
        super().__init__()
        if stabilization not in EF.STABILIZATIONS:
            raise ValueError(f"stabilization must be one of {list(EF.STABILIZATIONS)}, got {stabilization!r}")
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {list(INIT_MODES)}, got {init!r}")
        factory = {"device": device, "dtype": dtype}
        self.n_excitatory = n_excitatory
        self.n_inhibitory = inhibitory_count(n_excitatory, ei_ratio)
        self.ei_ratio = ei_ratio
        self.readout = readout
        self.stabilization = stabilization
        self.epsilon = epsilon
        self.ste = ste
        self.scale_w_ei_grad = scale_w_ei_grad
        self.init_mode = init
        self.w_ei = nn.Parameter(torch.empty(n_excitatory, self.n_inhibitory, **factory))
        self.g_i = nn.Parameter(torch.empty(self.n_inhibitory, **factory))
        self.g_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.b_e = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.register_buffer("initialized", torch.tensor(False, device=device))
        self.register_buffer("init_scale", torch.tensor(float("nan"), device=device, dtype=torch.float64))
        self.register_buffer("init_gain", torch.tensor(float("nan"), device=device, dtype=torch.float64))
        self._initialized = False  # host mirror of the buffer: forward never reads a device tensor

    def _init_lateral(self) -> None:
        with torch.no_grad():
            self.w_ei.fill_(1.0 / self.n_inhibitory)
            self.g_e.fill_(1.0)
            self.b_e.zero_()

    def reset_parameters(self) -> None:
        """Data-free init: ``W_EI = 1/n_I, g_E = 1, b_E = 0``; ``W_EE, W_IE`` by |Kaiming uniform|, ``g_I = 1``.

        With ``init="standard"`` this is the final init (the paper's ablation without E-I Init);
        with ``init="ei"`` the layer stays unusable until ``eisnn.ei_init`` runs.
        """
        self._init_lateral()
        with torch.no_grad():
            for w in (self.w_ee, self.w_ie):
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                w.abs_()
            self.g_i.fill_(1.0)
        self._set_initialized(self.init_mode == "standard")

    def _set_initialized(self, value: bool) -> None:
        self.initialized.fill_(value)
        self._initialized = value

    def ei_init_from(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """E-I Init (SPEC section 3) from this layer's actual input ``x`` (the whole merged batch).

        ``scale = sqrt(Var_x / (d (E_x2 + Var_x)))``, ``W_EE, W_IE ~ Exp(mean=scale)``,
        ``g_I = sqrt(E_x2 + Var_x) / (sqrt(d) E_x)``, ``W_EI = 1/n_I``, ``g_E = 1``, ``b_E = 0``.
        """
        with torch.no_grad():
            x = x.detach().double()
            e_x = x.mean()
            var_x = x.var(dim=0).mean()
            e_x2 = (x * x).mean()
            d = self.fan_in
            scale = torch.sqrt(var_x / (d * (e_x2 + var_x)))
            gain = torch.sqrt(e_x2 + var_x) / (math.sqrt(d) * e_x)
            self._init_lateral()
            for w in (self.w_ee, self.w_ie):
                w.exponential_(1.0, generator=generator).mul_(scale.to(w.dtype))
            self.g_i.fill_(float(gain))
            self.init_scale.fill_(float(scale))
            self.init_gain.fill_(float(gain))
        self._set_initialized(True)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._initialized = bool(self.initialized)

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def currents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(I_EE, I_I)`` from one input map with the stacked weight ``[W_EE; W_IE]``."""
        both = self._drive(x, torch.cat([self.w_ee, self.w_ie], dim=0))
        return both[:, : self.n_excitatory], both[:, self.n_excitatory :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._initialized:
            raise NotInitializedError(
                f"{type(self).__name__} is not initialized: call eisnn.ei_init(model, first_batch) "
                "before training or evaluating (or load a trained state dict)"
            )
        currents = self._drive(x, torch.cat([self.w_ee, self.w_ie], dim=0))
        w_ei = EF.divide_grad(self.w_ei, float(self.fan_in)) if self.scale_w_ei_grad else self.w_ei
        return EF.ei_integrate_currents(
            currents,
            self.n_excitatory,
            w_ei,
            self.g_i,
            self.g_e,
            self.b_e,
            readout=self.readout,
            stabilization=self.stabilization,
            epsilon=self.epsilon,
            ste=self.ste,
        )

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
    ) -> None:
        super().__init__(out_channels, ei_ratio, readout, stabilization, epsilon, ste, scale_w_ei_grad, init, device, dtype)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = stride
        self.padding = padding
        self.fan_in = in_channels * kh * kw
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_channels, kh, kw, **factory))
        self.reset_parameters()

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
    ) -> None:
        super().__init__(out_features, ei_ratio, readout, stabilization, epsilon, ste, scale_w_ei_grad, init, device, dtype)
        self.in_features, self.out_features = in_features, out_features
        self.fan_in = in_features
        factory = {"device": device, "dtype": dtype}
        self.w_ee = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.w_ie = nn.Parameter(torch.empty(self.n_inhibitory, in_features, **factory))
        self.reset_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self._ei_repr()}"
