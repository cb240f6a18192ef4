# Copyright (c) mmadc contributors. All rights reserved.
"""Scale-adaptive convolution (SAC, Zhang et al. ICCV 2017), Table III.

Not mmcv's ``'SAC'`` (the *switchable* atrous convolution of DetectoRS,
which owns that name in MMEngine's root registry): this layer is registered
as ``'ScaleAdaptiveConv2d'``, and ``adc_cfg=dict(type='SAC')`` selects it
through mmadc's block mechanism (``mmadc.models.backbones.adc_blocks``).
"""
from typing import Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ...utils.conv_registry import register_conv_layer
from .deform_conv import BACKENDS, deform_conv2d, numeric_padding

_IntPair = Union[int, Tuple[int, int]]


class ScaleAdaptiveConv2d(nn.Conv2d):
    """Scale-adaptive convolution, a drop-in for ``nn.Conv2d``.

    ``conv_scale`` (an ``nn.Conv2d`` with this layer's kernel size, stride,
    padding and dilation, one output channel) predicts a scale ``s(p)`` per
    output position, shared by all channels; tap ``(i, j)`` (``i, j`` in
    ``-(k // 2) .. k // 2``) reads the input at ``centre + s(p) * d * (i,
    j)`` with bilinear interpolation, ``d`` being the dilation. As a
    deformable convolution: ``offset_groups=1`` and offset ``(s(p) - 1) * d
    * (i, j)``. ``conv_scale`` starts with zero weight and bias one, so
    ``s == 1`` and the layer equals the plain convolution. The scale is used
    as regressed (no non-linearity), like Zhang et al.'s scale regression
    layer. ``weight``/``bias`` are ``nn.Conv2d``'s (same names and shapes).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int, int]): Kernel size (odd).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int] | str): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Base dilation ``d``. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        bias (bool): Whether to add a bias. Defaults to True.
        backend (str): ``'auto'``, ``'mmcv'`` or ``'torchvision'``, see
            :func:`mmadc.models.layers.deform_conv.deform_conv2d`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntPair,
                 stride: _IntPair = 1,
                 padding: Union[_IntPair, str] = 0,
                 dilation: _IntPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 backend: str = 'auto') -> None:
        if padding_mode != 'zeros':
            raise NotImplementedError(
                f'{type(self).__name__} only supports padding_mode="zeros", '
                f'got {padding_mode!r}')
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got '
                             f'{backend!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias)
        kh, kw = self.kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.backend = backend
        self.conv_scale = nn.Conv2d(
            in_channels,
            1,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True)
        # d * (i, j) of every tap in deformable-conv offset layout; the
        # offset of a tap is (s - 1) times this. Not a parameter, not saved.
        dh, dw = self.dilation
        rows = torch.arange(kh, dtype=torch.float32) - kh // 2
        cols = torch.arange(kw, dtype=torch.float32) - kw // 2
        taps = torch.stack([(dh * rows)[:, None].expand(kh, kw),
                            (dw * cols)[None, :].expand(kh, kw)],
                           dim=-1)  # (kh, kw, 2): (dy, dx) of tap (i, j)
        self.register_buffer(
            'tap_offsets',
            taps.reshape(1, 2 * kh * kw, 1, 1),
            persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Scale exactly 1 everywhere; ``weight`` untouched."""
        nn.init.zeros_(self.conv_scale.weight)
        nn.init.ones_(self.conv_scale.bias)

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s init for the conv, scale back to 1."""
        super().reset_parameters()
        # nn.Conv2d.__init__ calls this before conv_scale exists.
        if hasattr(self, 'conv_scale'):
            self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Predict the scales, then convolve at the scaled taps."""
        scale = self.conv_scale(x)  # (N, 1, H_out, W_out)
        offset = (scale - 1) * self.tap_offsets.to(scale.dtype)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride,
                             numeric_padding(self), self.dilation, self.groups,
                             self.backend)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', backend={self.backend!r}'


register_conv_layer('ScaleAdaptiveConv2d', ScaleAdaptiveConv2d)
