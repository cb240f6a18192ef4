# Copyright (c) mmadc contributors. All rights reserved.
"""The native CPU path of adaptive dilated convolution.

``mmadc/ops/csrc/adc_cpu.cpp`` is compiled at install time into
``mmadc.ops._adc_cpu`` when a C++ compiler is available (see ``setup.py``);
without it the package still installs and every call takes the reference
implementation in :mod:`mmadc.ops.adaptive_dilated_conv`.

The kernel builds the tap columns of a few output rows at a time in cache
and hands them to a GEMM (oneDNN for float32), so it moves little more
memory than the convolution it replaces. It computes the same function, with
the same floor convention at integer positions, as the reference; tests
compare the two (values and all gradients) on every CI run.

Which path runs is chosen per call by :func:`adaptive_dilated_conv2d
<mmadc.ops.adaptive_dilated_conv2d>`: the native one for float32/float64 CPU
tensors outside autocast when it is built, the reference otherwise. Force a
path with :func:`adc_implementation` or the ``MMADC_ADC_IMPL`` environment
variable (``auto``, ``native`` or ``reference``).
"""
import contextlib
import os
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .tensor_layout import memory_format

try:
    from . import _adc_cpu
except ImportError:  # built without a compiler: reference path only
    _adc_cpu = None

#: The columns of one block of output rows (and of one channel chunk in the
#: backward of late stages) take about this many bytes per thread. Measured
#: on the machine of the README's figures (1 MiB L2 per core): 2 MiB was
#: 5-16% faster than 1 MiB at ResNet-50's stages 1-2 and even elsewhere.
BLOCK_BYTES = 2 << 20

IMPLEMENTATIONS = ('auto', 'native', 'reference')
_implementation: Optional[str] = None  # None: from MMADC_ADC_IMPL


def native_cpu_available() -> bool:
    """Whether the native CPU kernel was built and imports."""
    return _adc_cpu is not None


def get_adc_implementation() -> str:
    """The selected implementation: ``auto``, ``native`` or ``reference``."""
    name = _implementation or os.environ.get('MMADC_ADC_IMPL', 'auto')
    if name not in IMPLEMENTATIONS:
        raise ValueError(f'MMADC_ADC_IMPL must be one of {IMPLEMENTATIONS}, '
                         f'got {name!r}')
    return name


@contextlib.contextmanager
def adc_implementation(name: str) -> Iterator[None]:
    """Select the ADC implementation within a ``with`` block.

    Args:
        name (str): ``'auto'`` (native where it applies), ``'native'``
            (raise where it does not) or ``'reference'``.
    """
    global _implementation
    if name not in IMPLEMENTATIONS:
        raise ValueError(
            f'implementation must be one of {IMPLEMENTATIONS}, got {name!r}')
    previous, _implementation = _implementation, name
    try:
        yield
    finally:
        _implementation = previous


def use_native(input: Tensor, gemm_dtype: torch.dtype) -> bool:
    """Whether a call with these tensors runs the native kernel."""
    name = get_adc_implementation()
    if name == 'reference':
        return False
    reason = None
    if _adc_cpu is None:
        reason = ('mmadc was installed without its native CPU kernel '
                  '(no C++ compiler at install time)')
    elif input.device.type != 'cpu':
        reason = f'the native kernel is CPU-only, input is on {input.device}'
    elif input.dtype not in (torch.float32, torch.float64):
        reason = f'the native kernel takes float32/float64, not {input.dtype}'
    elif gemm_dtype != input.dtype:
        reason = 'the native kernel does not run under autocast'
    if reason is None:
        return True
    if name == 'native':
        raise RuntimeError(f'ADC implementation "native" requested but '
                           f'{reason}; use "auto" or "reference"')
    return False


class NativeAdaptiveDilatedConv2dFunction(Function):
    """Autograd function of the native CPU kernel (float32/float64).

    Saves only the input, the weight and the rates, like ``nn.Conv2d``; the
    backward recomputes the tap columns block by block.
    """

    @staticmethod
    def forward(ctx, input: Tensor, weight: Tensor, rates: Tensor,
                bias: Optional[Tensor], stride: Tuple[int, int],
                padding: Tuple[int, int], dilation: Tuple[int,
                                                          int]) -> Tensor:
        out = _adc_cpu.forward(input, weight, rates, bias, stride, padding,
                               dilation, BLOCK_BYTES)
        ctx.save_for_backward(input, weight, rates)
        ctx.conv_args = (stride, padding, dilation)
        return out.contiguous(memory_format=memory_format(input))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        input, weight, rates = ctx.saved_tensors
        need_x, need_w, need_r, need_b = ctx.needs_input_grad[:4]
        grad_x = grad_w = grad_r = grad_b = None
        if need_x or need_w or need_r:
            grad_x, grad_w, grad_r = _adc_cpu.backward(
                grad_out, input, weight, rates, *ctx.conv_args, need_x,
                need_w, need_r, BLOCK_BYTES)
            if need_x:
                grad_x = grad_x.contiguous(
                    memory_format=memory_format(input))
        if need_b:  # False when bias is None
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_r, grad_b, None, None, None
