# Copyright (c) mmadc contributors. All rights reserved.
"""Adaptive dilated convolution layer, a drop-in for ``nn.Conv2d``.

Registered as the mmcv conv layer ``'ADC'`` by :mod:`mmadc.models.layers`.
"""
import math
from contextlib import nullcontext
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.module import (_global_forward_hooks,
                                     _global_forward_pre_hooks)

from . import adaptive_dilated_conv as adc_op
from . import native_cpu
from .adaptive_dilated_conv import (_autocast_dtype, _runs_kernel_directly,
                                    adaptive_dilated_conv2d, rate_bound)
from .implementations import get_adc_implementation

# torch.compiler.is_exporting: torch >= 2.5
_exporting = getattr(
    getattr(torch, 'compiler', None), 'is_exporting', lambda: False)

#: The last non-linearity of the rate regressor: each maps 1 to 1 (the
#: regressor outputs 1 at initialisation) and is non-negative.
RATE_ACTIVATIONS = {
    'relu': F.relu,
    'softplus': lambda z: F.softplus(z - 1 + math.log(math.e - 1)),
    'elu': lambda z: F.elu(z - 1) + 1,
}


def _computes_as_written(regressor: Tuple[nn.Module, ...]) -> bool:
    """Whether ``(regressor, fc1, fc2)`` compute what this module says: a
    :class:`DilationRateRegressor` and two ``nn.Linear`` (no subclass, no
    forward set on the instance) that no forward hook or pre-hook (its own
    or a global one) waits for."""
    return (not (_global_forward_hooks or _global_forward_pre_hooks) and tuple(
        map(type, regressor)) == _AS_WRITTEN and not any(
            m._forward_hooks or m._forward_pre_hooks or 'forward' in m.__dict__
            for m in regressor))


class DilationRateRegressor(nn.Module):
    """Dilation-rate regression module (DRM) of ADC.

    Global average pooling, then ``Linear(C_in, hidden) -> ReLU ->
    Linear(hidden, g) -> activation``; the activation keeps the rates
    non-negative. The last layer starts with zero weight and bias one, and
    every activation maps 1 to 1, so every rate is exactly 1 at
    initialisation.

    Activations (``activation``):

    - ``'relu'`` (the paper's, the default): a rate that reaches 0 gets no
      gradient any more, so its channels stay 1x1 convolutions for good
      (``ADCRateLoggerHook`` reports and warns about such dead rates);
    - ``'softplus'``: ``softplus(z - 1 + log(e - 1))``, positive with a
      positive slope everywhere;
    - ``'elu'``: ``elu(z - 1) + 1``, the identity above 1 and
      ``exp(z - 1)`` below.

    Args:
        in_channels (int): Channels of the input feature map.
        num_rates (int): Number of dilation groups ``g``.
        hidden_channels (int, optional): Width of the hidden layer. Defaults
            to ``max(in_channels // 4, 16)``: a squeeze-and-excitation style
            reduction that keeps the DRM tiny next to the convolution while
            never going below 16 units for thin layers.
        max_rate (float, optional): If given, rates are clamped to at most
            this value (bounds the receptive field and the sampling extent).
        activation (str): ``'relu'``, ``'softplus'`` or ``'elu'`` (see
            above). Defaults to ``'relu'``.
    """

    def __init__(self,
                 in_channels: int,
                 num_rates: int,
                 hidden_channels: Optional[int] = None,
                 max_rate: Optional[float] = None,
                 activation: str = 'relu',
                 device=None,
                 dtype=None) -> None:
        super().__init__()
        if activation not in RATE_ACTIVATIONS:
            raise ValueError(f'activation must be one of '
                             f'{tuple(RATE_ACTIVATIONS)}, got {activation!r}')
        self.activation = activation
        if hidden_channels is None:
            hidden_channels = max(in_channels // 4, 16)
        if (isinstance(hidden_channels, bool)
                or not isinstance(hidden_channels, int)
                or hidden_channels < 1):
            # 0 would leave fc2 with only its bias: constant rates
            raise ValueError('hidden_channels must be a positive int, got '
                             f'{hidden_channels!r}')
        if max_rate is not None and not max_rate > 0:
            raise ValueError(f'max_rate must be positive, got {max_rate}')
        self.max_rate = max_rate
        factory = dict(device=device, dtype=dtype)
        self.fc1 = nn.Linear(in_channels, hidden_channels, **factory)
        self.fc2 = nn.Linear(hidden_channels, num_rates, **factory)
        self.init_weights()

    def init_weights(self) -> None:
        """Make every rate exactly 1 (``fc2``: zero weight, bias one).

        ``fc1`` keeps its default initialisation: with a zero ``fc2`` the
        rates do not depend on it at first, and its random features let
        ``fc2`` receive non-zero gradients.
        """
        nn.init.zeros_(self.fc2.weight)
        nn.init.ones_(self.fc2.bias)

    def reset_parameters(self) -> None:
        """Re-initialise both layers (rates exactly 1 afterwards)."""
        self.fc1.reset_parameters()
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Regress the rates.

        Args:
            x (Tensor): Feature map of shape ``(N, C_in, H, W)``.

        Returns:
            Tensor: Rates of shape ``(N, g)``, non-negative, in the dtype of
            the regressor's parameters (also under autocast).
        """
        # Rates in the regressor's precision even under autocast: they scale
        # the sampling offsets, which float16/bfloat16 would round coarsely.
        dtype = self.fc1.weight.dtype
        pooled = x.mean(dim=(2, 3), dtype=dtype)
        # Only leave autocast where it is on: torch.autocast raises for a
        # device type without autocast (meta, which shape inference and
        # lazy initialisation use), and there is nothing to leave there.
        no_autocast = (
            torch.autocast(x.device.type, enabled=False)
            if _autocast_dtype(pooled) is not None else nullcontext())
        with no_autocast:
            rates = RATE_ACTIVATIONS[self.activation](
                self.fc2(F.relu(self.fc1(pooled))))
        if self.max_rate is not None:
            rates = rates.clamp(max=self.max_rate)
        return rates


#: The regressor's module types (itself, fc1, fc2) that the native kernel
#: computes (see ``_computes_as_written``).
_AS_WRITTEN = (DilationRateRegressor, nn.Linear, nn.Linear)


class AdaptiveDilatedConv2d(nn.Conv2d):
    """Adaptive dilated convolution (ADC), a drop-in for ``nn.Conv2d``.

    The input channels are split into ``dilation_groups`` contiguous groups;
    a :class:`DilationRateRegressor` (``self.rate_regressor``) predicts one
    non-negative rate per group and sample, and tap ``(i, j)`` of a channel
    reads the input at ``centre + dilation * rate * (i, j)`` with bilinear
    interpolation (see :func:`adaptive_dilated_conv2d`). With all rates 1
    this is exactly the ``nn.Conv2d`` with the same arguments, which is the
    state after initialisation.

    ``weight`` and ``bias`` are ``nn.Conv2d``'s parameters (same names and
    shapes), so a pretrained ``nn.Conv2d`` state dict loads with
    ``strict=False``, reporting only the ``rate_regressor.*`` keys as
    missing, and conv initialisers (e.g. ``kaiming_init``) apply unchanged.

    Initialisation: backbone code that walks all modules (e.g. an
    ``init_cfg`` with ``layer='Linear'``) could overwrite the regressor.
    MMEngine's ``BaseModule.init_weights`` applies the parent's ``init_cfg``
    first and then calls ``init_weights`` of each child, and this layer's
    :meth:`init_weights` restores the regressor (rates exactly 1) while
    leaving ``weight``/``bias`` alone. Code that re-initialises ``nn.Linear``
    modules *after* that must call :meth:`init_weights` again.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int, int]): Kernel size (odd).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int] | str): Zero padding, as for
            ``nn.Conv2d`` (``'same'``/``'valid'`` accepted). Defaults to 0.
        dilation (int | tuple[int, int]): Base dilation ``d``; the effective
            dilation of a channel is ``d * rate``. Defaults to 1.
        groups (int): Must be 1 (grouped convolution is not implemented).
        bias (bool): Whether to add a bias. Defaults to True.
        padding_mode (str): Must be ``'zeros'``.
        dilation_groups (int, optional): Number of dilation groups ``g``;
            must divide ``in_channels``. Defaults to None, meaning one rate
            per input channel (``g = in_channels``, the paper's default).
        hidden_channels (int, optional): Hidden width of the regressor.
            Defaults to ``max(in_channels // 4, 16)``.
        max_rate (float, optional): Upper clamp of the rates. Defaults to
            None (no clamp).
        rate_activation (str): Last non-linearity of the regressor:
            ``'relu'`` (the paper's; rates at 0 stop learning), or
            ``'softplus'`` / ``'elu'``, which cannot die (see
            :class:`DilationRateRegressor`). Defaults to ``'relu'``.

    Attributes:
        last_rates (Tensor | None): Rates of the last forward, shape
            ``(N, g)``, detached (no graph is kept); replaced every forward.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding: Union[int, Tuple[int, int], str] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 dilation_groups: Optional[int] = None,
                 hidden_channels: Optional[int] = None,
                 max_rate: Optional[float] = None,
                 rate_activation: str = 'relu',
                 device=None,
                 dtype=None) -> None:
        if groups != 1:
            raise NotImplementedError(
                'AdaptiveDilatedConv2d does not implement grouped '
                f'convolution (groups={groups}); use groups=1')
        if padding_mode != 'zeros':
            raise NotImplementedError(
                'AdaptiveDilatedConv2d only supports padding_mode="zeros", '
                f'got {padding_mode!r}')
        if dilation_groups is None:
            dilation_groups = in_channels
        if (isinstance(dilation_groups, bool)
                or not isinstance(dilation_groups, int) or dilation_groups < 1
                or in_channels % dilation_groups):
            raise ValueError(
                'dilation_groups must be a positive int dividing '
                f'in_channels={in_channels}, got {dilation_groups!r}')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=1,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype)
        if self.kernel_size[0] % 2 == 0 or self.kernel_size[1] % 2 == 0:
            raise ValueError('kernel_size must be odd, got '
                             f'{self.kernel_size}')
        self.dilation_groups = dilation_groups
        self.rate_regressor = DilationRateRegressor(
            in_channels,
            dilation_groups,
            hidden_channels=hidden_channels,
            max_rate=max_rate,
            activation=rate_activation,
            device=device,
            dtype=dtype)
        self.last_rates: Optional[Tensor] = None

    @property
    def max_rate(self) -> Optional[float]:
        """Upper clamp of the rates (None: no clamp)."""
        return self.rate_regressor.max_rate

    def _padding_pair(self) -> Tuple[int, int]:
        """Numeric padding (``nn.Conv2d`` keeps 'same'/'valid' strings)."""
        if self.padding == 'valid':
            return (0, 0)
        if self.padding == 'same':
            # nn.Conv2d only allows 'same' with stride 1; odd kernels make it
            # symmetric.
            return tuple(d * (k // 2) for d, k in zip(
                self.dilation, self.kernel_size))  # type: ignore
        return self.padding  # type: ignore[return-value]

    def reset_parameters(self) -> None:
        """``nn.Conv2d`` init for the conv; rates back to exactly 1."""
        super().reset_parameters()
        # nn.Conv2d.__init__ calls this before the regressor exists.
        if hasattr(self, 'rate_regressor'):
            self.rate_regressor.reset_parameters()

    def init_weights(self) -> None:
        """Restore the regressor's identity start (rates exactly 1).

        Called by MMEngine's ``BaseModule.init_weights`` after the parent's
        ``init_cfg`` has been applied; ``weight`` and ``bias`` are left as
        the backbone initialised (or loaded) them.
        """
        self.rate_regressor.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Run the regressor, then the adaptive dilated convolution.

        Args:
            x (Tensor): Input of shape ``(N, in_channels, H, W)``, or
                unbatched ``(in_channels, H, W)`` as ``nn.Conv2d`` accepts.

        Returns:
            Tensor: Output of the shape ``nn.Conv2d`` would give.
        """
        if not isinstance(x, Tensor) or x.dim() not in (3, 4):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError('input must be a 4-D (N, C, H, W) or unbatched '
                             f'3-D (C, H, W) tensor, got {shape}')
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.shape[1] != self.in_channels:
            raise ValueError(f'input has {x.shape[1]} channels but '
                             f'in_channels={self.in_channels}')
        padding = self._padding_pair()
        regressor = self.rate_regressor
        fc1, fc2 = regressor.fc1, regressor.fc2
        tensors = (x, self.weight, self.bias, fc1.weight, fc1.bias, fc2.weight,
                   fc2.bias)
        rates = None
        if self._native_inference_allowed(tensors, (regressor, fc1, fc2)):
            rates, out = native_cpu.layer_forward(
                *tensors, regressor.activation, regressor.max_rate,
                rate_bound(x, padding, self.dilation), self.stride, padding,
                self.dilation)
            if out is not None:
                self.last_rates = rates
                return out
            # else no rates (a call it does not compute), or rates the op
            # must clamp (or NaN ones it poisons)
        if rates is None:
            rates = regressor(x)
        # For the rate hook and the analysis tools; an exported program is
        # stateless (and its export would warn about the attribute).
        if not _exporting():
            self.last_rates = rates.detach()
        return adaptive_dilated_conv2d(x, self.weight, rates, self.bias,
                                       self.stride, padding, self.dilation)

    @staticmethod
    def _native_inference_allowed(tensors: Tuple[Optional[Tensor], ...],
                                  regressor: Tuple[nn.Module, ...]) -> bool:
        """Whether the native kernel may run this call whole, rates and
        output in one call (``native_cpu.layer_forward``, which checks the
        tensors themselves): where the op's kernel would run without the
        dispatcher (see ``_runs_kernel_directly``), the native kernel is
        selected, and the regressor's modules (``regressor``: itself, fc1,
        fc2) compute what the call does. Why one call: README, "An ADC
        layer in eager inference is one native call"."""
        # _runs_kernel_directly first: under torch.compile it returns at
        # once, before any check that would break the graph
        return (_runs_kernel_directly(*tensors) and not adc_op._check_rates
                and _autocast_dtype(tensors[0]) is None
                and native_cpu.native_cpu_available()
                and get_adc_implementation() in ('auto', 'native')
                and _computes_as_written(regressor))

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', dilation_groups={self.dilation_groups}, '
                f'max_rate={self.max_rate}, '
                f'rate_activation={self.rate_regressor.activation!r}')
