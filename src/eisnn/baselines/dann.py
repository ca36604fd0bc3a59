"""DANN: the non-spiking E-I layer of Cornford et al. (ICLR 2021), the ancestor of the E-I layer.

For an input ``x`` with fan-in ``d`` (per excitatory unit), ``n_E`` excitatory outputs and ``n_I``
inhibitory units::

    zE    = W_EE x                                  # [N, n_E, ...]
    zI    = W_IE x                                  # [N, n_I, ...]
    zhat  = zE - W_EI zI                            # subtractive inhibition
    gamma = W_EI (exp(alpha) * zI) + 1e-8           # divisive inhibition, alpha in log space
    z     = g * zhat / gamma + b

which is the E-I integration (``functional.ei_integrate``) with ``g_I = exp(alpha)`` and the fixed
``epsilon`` stabilization. The unit non-linearity (ReLU, identity at the output) is not part of the
layer. No batch statistics: training and evaluation compute the same function.
``W_EE, W_IE, W_EI, g`` are Dale-constrained (``dale_parameters``, clamped to ``>= 0`` by
``eisnn.dale`` after each step).

Corrected SGD (``corrected_gradients=True``): the backward pass divides the gradients as
``grad(W_IE) /= sqrt(n_E)``, ``grad(W_EI) /= d``, ``grad(alpha) /= sqrt(n_E) * d``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..functional import divide_grad, ei_integrate, stack_weights

DANN_DALE_PARAMETERS: tuple[str, ...] = ("w_ee", "w_ie", "w_ei", "g")
GAMMA_EPSILON = 1e-8


class DANNLayer(nn.Module):
    """What ``DANNConv2d`` and ``DANNLinear`` share. Subclasses set ``w_ee, w_ie``, ``fan_in`` and
    ``_drive``.

    ``first=True`` marks a layer that reads the raw input (not ReLU units): a different init scale.
    """

    dale_parameters = DANN_DALE_PARAMETERS
    fan_in: int

    def __init__(
        self,
        n_excitatory: int,
        n_inhibitory: int,
        first: bool,
        corrected_gradients: bool,
        factory: dict,
    ) -> None:
        super().__init__()
        if n_excitatory < 1 or n_inhibitory < 1:
            raise ValueError(
                "DANN layer needs >= 1 excitatory and inhibitory units, "
                f"got {n_excitatory}/{n_inhibitory}"
            )
        self.n_excitatory = n_excitatory
        self.n_inhibitory = n_inhibitory
        self.first = first
        self.corrected_gradients = corrected_gradients
        self.w_ei = nn.Parameter(torch.empty(n_excitatory, n_inhibitory, **factory))
        self.alpha = nn.Parameter(torch.empty(n_inhibitory, **factory))
        self.g = nn.Parameter(torch.empty(n_excitatory, **factory))
        self.b = nn.Parameter(torch.empty(n_excitatory, **factory))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """DANN init: ``W_EE, W_IE ~ Exp(mean=s)`` with ``s = sqrt(2 pi / (d (2 pi - 1)))``
        (hidden) or ``sqrt(1 / (2 d))`` (first layer); ``W_EI = 1/n_I``;
        ``exp(alpha) = sqrt((2 pi - 1) / d)``; ``g = 1``, ``b = 0``. With one I unit, ``W_IE`` is
        the mean row of ``W_EE`` and ``W_EI = 1``.
        """
        d = self.fan_in
        scale = (
            math.sqrt(1.0 / (2 * d))
            if self.first
            else math.sqrt(2 * math.pi / (d * (2 * math.pi - 1)))
        )
        self.w_ee.exponential_(1.0 / scale)
        if self.n_inhibitory == 1:
            self.w_ie.copy_(self.w_ee.mean(dim=0, keepdim=True))
        else:
            self.w_ie.exponential_(1.0 / scale)
        self.w_ei.fill_(1.0 / self.n_inhibitory)
        self.alpha.fill_(0.5 * math.log((2 * math.pi - 1) / d))
        self.g.fill_(1.0)
        self.b.zero_()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_ie, w_ei, alpha = self.w_ie, self.w_ei, self.alpha
        if self.corrected_gradients:
            root_n_e = math.sqrt(self.n_excitatory)
            w_ie = divide_grad(w_ie, root_n_e)
            w_ei = divide_grad(w_ei, float(self.fan_in))
            alpha = divide_grad(alpha, root_n_e * self.fan_in)
        both = self._drive(x, stack_weights(self.w_ee, w_ie))
        return ei_integrate(
            both,
            self.n_excitatory,
            w_ei,
            torch.exp(alpha),
            self.g,
            self.b,
            stabilization="epsilon",
            epsilon=GAMMA_EPSILON,
        )

    def _dann_repr(self) -> str:
        extra = ", first=True" if self.first else ""
        if not self.corrected_gradients:
            extra += ", corrected_gradients=False"
        return f"n_E={self.n_excitatory}, n_I={self.n_inhibitory}{extra}"


class DANNLinear(DANNLayer):
    """Dense DANN layer: ``W_EE [n_E, d]``, ``W_IE [n_I, d]``, ``W_EI [n_E, n_I]``,
    ``alpha [n_I]``, ``g, b [n_E]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_inhibitory: int,
        first: bool = False,
        corrected_gradients: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(out_features, n_inhibitory, first, corrected_gradients, factory)
        self.in_features, self.out_features = in_features, out_features
        self.fan_in = in_features
        self.w_ee = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.w_ie = nn.Parameter(torch.empty(n_inhibitory, in_features, **factory))
        self.reset_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, {self._dann_repr()}"
        )


class DANNConv2d(DANNLayer):
    """Convolutional DANN layer: two bias-free convs ``W_EE, W_IE`` and ``W_EI`` as a 1x1 channel
    mix."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_inhibitory: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        first: bool = False,
        corrected_gradients: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(out_channels, n_inhibitory, first, corrected_gradients, factory)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.fan_in = in_channels * kernel_size * kernel_size
        self.w_ee = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size, **factory)
        )
        self.w_ie = nn.Parameter(
            torch.empty(n_inhibitory, in_channels, kernel_size, kernel_size, **factory)
        )
        self.reset_parameters()

    def _drive(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, {self._dann_repr()}"
        )
