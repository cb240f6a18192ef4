# Copyright (c) mmadc contributors. All rights reserved.
"""Deformable convolution (DC, Dai et al. 2017): Table III's comparison layer.

:func:`deform_conv2d` runs a deformable convolution on mmcv's compiled op
when it loads, else on ``torchvision.ops.deform_conv2d``; both read an offset
tensor of layout ``(N, 2 * offset_groups * kh * kw, H_out, W_out)`` with the
``(dy, dx)`` pair of tap ``t = i * kw + j`` of offset group ``g`` at channels
``2 * (g * kh * kw + t)`` and ``+ 1``. The scale-adaptive convolution
(``sac.py``) reuses it.
"""
import functools
from typing import Callable, Optional, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch import Tensor
from torch.nn.modules.utils import _pair

from ...utils.conv_registry import register_conv_layer

_IntPair = Union[int, Tuple[int, int]]

BACKENDS = ('auto', 'mmcv', 'torchvision')


@functools.lru_cache(maxsize=None)
def mmcv_deform_conv2d() -> Optional[Callable]:
    """mmcv's ``deform_conv2d`` if its compiled ops load, else None."""
    try:
        from mmcv.ops import deform_conv2d as fn
    except (ImportError, OSError, RuntimeError):
        return None
    return fn


@functools.lru_cache(maxsize=None)
def mmcv_supports(device_type: str) -> bool:
    """Whether mmcv's compiled deform conv runs on ``device_type``.

    mmcv built without CUDA (e.g. on a CPU-only machine) still loads its
    ops, but only for CPU tensors.
    """
    if mmcv_deform_conv2d() is None:
        return False
    if device_type == 'cpu':
        return True
    if device_type == 'cuda':
        from mmcv.ops import get_compiling_cuda_version
        return get_compiling_cuda_version() != 'not available'
    return False


def _largest_divisor(n: int, limit: int) -> int:
    """Largest divisor of ``n`` that is at most ``limit``."""
    for d in range(min(n, limit), 0, -1):
        if n % d == 0:
            return d
    return 1


def _mmcv_forward(fn: Callable, x: Tensor, offset: Tensor, weight: Tensor,
                  bias: Optional[Tensor], stride: Tuple[int, int],
                  padding: Tuple[int, int], dilation: Tuple[int, int],
                  groups: int, offset_groups: int) -> Tensor:
    """mmcv's op with its restrictions lifted (bias, batch, tiny inputs)."""
    n, _, h, w = x.shape
    h_out, w_out = offset.shape[2:]
    kh, kw = weight.shape[2:]
    # mmcv refuses inputs smaller than the kernel; zero rows/columns at the
    # bottom/right read exactly like its out-of-image zeros.
    pad_h, pad_w = max(kh - h, 0), max(kw - w, 0)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
        full_h = (h + pad_h + 2 * padding[0] - dilation[0] *
                  (kh - 1) - 1) // stride[0] + 1
        full_w = (w + pad_w + 2 * padding[1] - dilation[1] *
                  (kw - 1) - 1) // stride[1] + 1
        offset = F.pad(offset, (0, full_w - w_out, 0, full_h - h_out))
    # The batch must be a multiple of im2col_step (default 32).
    step = _largest_divisor(n, 32)
    out = fn(x.contiguous(), offset.contiguous(), weight, stride, padding,
             dilation, groups, offset_groups, False, step)
    out = out[:, :, :h_out, :w_out]
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, -1, 1, 1)
    return out


def deform_conv2d(x: Tensor,
                  offset: Tensor,
                  weight: Tensor,
                  bias: Optional[Tensor] = None,
                  stride: _IntPair = 1,
                  padding: _IntPair = 0,
                  dilation: _IntPair = 1,
                  groups: int = 1,
                  backend: str = 'auto') -> Tensor:
    """Deformable 2-D convolution on mmcv's or torchvision's kernel.

    Args:
        x (Tensor): Input ``(N, C_in, H, W)``.
        offset (Tensor): Offsets ``(N, 2 * offset_groups * kh * kw, H_out,
            W_out)``, ``(dy, dx)`` per tap, in input pixels.
        weight (Tensor): Weight ``(C_out, C_in / groups, kh, kw)``.
        bias (Tensor, optional): Bias ``(C_out, )``.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        backend (str): ``'mmcv'``, ``'torchvision'`` or ``'auto'`` (mmcv if
            its compiled ops load and support ``x``'s device, else
            torchvision). Defaults to 'auto'.

    Returns:
        Tensor: Output ``(N, C_out, H_out, W_out)``.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got '
                         f'{backend!r}')
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = weight.shape[2:]
    if offset.shape[1] % (2 * kh * kw):
        raise ValueError(f'offset has {offset.shape[1]} channels, not a '
                         f'multiple of 2 * {kh} * {kw}')
    offset_groups = offset.shape[1] // (2 * kh * kw)
    use_mmcv = backend == 'mmcv' or (backend == 'auto'
                                     and mmcv_supports(x.device.type))
    if use_mmcv:
        fn = mmcv_deform_conv2d()
        if fn is None:
            raise RuntimeError('backend="mmcv" needs mmcv with compiled ops')
        return _mmcv_forward(fn, x, offset, weight, bias, stride, padding,
                             dilation, groups, offset_groups)
    # torchvision infers the groups from the weight shape.
    return torchvision.ops.deform_conv2d(
        x,
        offset,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation)


def numeric_padding(conv: nn.Conv2d) -> Tuple[int, int]:
    """``conv.padding`` as numbers (``nn.Conv2d`` keeps 'same'/'valid')."""
    if conv.padding == 'valid':
        return (0, 0)
    if conv.padding == 'same':
        # nn.Conv2d accepts 'same' only with stride 1; odd kernels assumed.
        return tuple(d * (k - 1) // 2
                     for d, k in zip(conv.dilation, conv.kernel_size))
    return tuple(conv.padding)  # type: ignore[return-value]


class DeformableConv2d(nn.Conv2d):
    """Deformable convolution, a drop-in for ``nn.Conv2d`` (Table III, DC).

    Free per-position, per-tap offsets are predicted from the input by
    ``conv_offset``, an ``nn.Conv2d`` with this layer's kernel size, stride,
    padding and dilation (so its output grid is this layer's), initialised
    to zero: the layer starts as the plain convolution. ``weight`` and
    ``bias`` are ``nn.Conv2d``'s (same names and shapes), so ImageNet
    weights load into it.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int, int]): Kernel size.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int] | str): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        bias (bool): Whether to add a bias. Defaults to True.
        offset_groups (int): Channel groups with their own offsets (must
            divide ``in_channels``). Defaults to 1 (Dai et al.).
        backend (str): See :func:`deform_conv2d`. Defaults to 'auto'.
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
                 offset_groups: int = 1,
                 backend: str = 'auto') -> None:
        if padding_mode != 'zeros':
            raise NotImplementedError(
                f'{type(self).__name__} only supports padding_mode="zeros", '
                f'got {padding_mode!r}')
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got '
                             f'{backend!r}')
        if offset_groups < 1 or in_channels % offset_groups:
            raise ValueError('offset_groups must be a positive divisor of '
                             f'in_channels={in_channels}, got '
                             f'{offset_groups}')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias)
        self.offset_groups = offset_groups
        self.backend = backend
        kh, kw = self.kernel_size
        self.conv_offset = nn.Conv2d(
            in_channels,
            2 * offset_groups * kh * kw,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        """Zero offsets (the plain convolution); ``weight`` untouched."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s init for the conv, zero offsets."""
        super().reset_parameters()
        # nn.Conv2d.__init__ calls this before conv_offset exists.
        if hasattr(self, 'conv_offset'):
            self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Predict offsets, then convolve at the displaced taps."""
        offset = self.conv_offset(x)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride,
                             numeric_padding(self), self.dilation, self.groups,
                             self.backend)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', offset_groups={self.offset_groups}, '
                f'backend={self.backend!r}')


register_conv_layer('DC', DeformableConv2d)
register_conv_layer('DeformableConv2d', DeformableConv2d)
