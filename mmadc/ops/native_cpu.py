# Copyright (c) mmadc contributors. All rights reserved.
"""The native CPU path of adaptive dilated convolution.

``mmadc/ops/csrc/adc_cpu.cpp`` is compiled at install time into
``mmadc.ops._adc_cpu`` when a C++ compiler is available (see ``setup.py``);
without it the package still installs and every call takes the reference
implementation in :mod:`mmadc.ops.reference`.

The kernel builds the tap columns of a few output rows at a time in cache
and hands them to a GEMM (see :func:`gemm_library`), so it moves little more
memory than the convolution it replaces. It computes the same function, with
the same convention at integer positions (the rate derivative as rates
increase), as the reference; tests compare the two (values and all
gradients) on every CI run.

Which implementation runs is chosen per call by
:mod:`mmadc.ops.implementations`; :func:`unsupported_reason` says where
this one does not apply.
"""
import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .tensor_layout import memory_format

try:
    from . import _adc_cpu
except ImportError:  # built without a compiler: reference path only
    _adc_cpu = None

#: The columns of one block of output rows (and of one channel chunk in the
#: backward of late stages) take about this many bytes per thread: of the
#: order of a core's L2 cache, so that a block's columns are still cached
#: when its GEMM reads them; the value was chosen by measurement (README,
#: "How the kernel gets there").
BLOCK_BYTES = 2 << 20


def native_cpu_available() -> bool:
    """Whether the native CPU kernel was built and imports."""
    return _adc_cpu is not None


#: The native kernel's float32 GEMM libraries: ``auto`` (oneDNN's matmul
#: where the CPU has AVX-512 and is not Intel's, else at::mm, see ``gemm_nt``
#: in the kernel),
#: ``onednn`` or ``mm``.
GEMM_LIBRARIES = ('auto', 'onednn', 'mm')


@contextlib.contextmanager
def gemm_library(name: str) -> Iterator[None]:
    """Route the native kernel's float32 GEMMs to ``name`` (one of
    :data:`GEMM_LIBRARIES`) within a ``with`` block (for benchmarks)."""
    if name not in GEMM_LIBRARIES:
        raise ValueError(f'gemm library must be one of {GEMM_LIBRARIES}, '
                         f'got {name!r}')
    if name == 'auto':
        yield
        return
    if _adc_cpu is None:
        raise RuntimeError(f'gemm library {name!r} needs the native CPU '
                           'kernel, which is not built')
    if name == 'onednn' and not _adc_cpu.has_onednn():
        raise RuntimeError("gemm library 'onednn' needs PyTorch's "
                           'mkldnn::_linear_pointwise operator, which this '
                           'PyTorch lacks')
    previous = _adc_cpu.uses_onednn()
    _adc_cpu.set_onednn(name == 'onednn')
    try:
        yield
    finally:
        _adc_cpu.set_onednn(previous)


def gemm_nt(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` (``a``: (M, K), ``b``: (N, K), each with unit stride
    along one dimension) with the GEMM library of the kernel's products
    (see :func:`gemm_library`): the kernel's GEMMs alone, for
    ``benchmark_adc.py --gemm-floor``."""
    return _adc_cpu.gemm_nt(a, b)


def gemm_library_in_use() -> Optional[str]:
    """``'oneDNN'`` or ``'at::mm'``: where float32 GEMMs go now (None
    without the native kernel)."""
    if _adc_cpu is None:
        return None
    return 'oneDNN' if _adc_cpu.uses_onednn() else 'at::mm'


def unsupported_reason(input: Tensor,
                       compute_dtype: torch.dtype,
                       weight: Optional[Tensor] = None) -> Optional[str]:
    """Why the native kernel cannot compute this call, or None if it can.

    Args:
        input (Tensor): The call's input.
        compute_dtype (torch.dtype): Its GEMM dtype.
        weight (Tensor, optional): Its weight (any weight will do).
    """
    if not native_cpu_available():
        return ('mmadc was installed without its native CPU kernel '
                '(no C++ compiler at install time)')
    if input.device.type != 'cpu':
        return f'the native kernel is CPU-only, input is on {input.device}'
    if input.dtype not in (torch.float32, torch.float64):
        return f'the native kernel takes float32/float64, not {input.dtype}'
    if compute_dtype != input.dtype:
        return 'the native kernel does not run under autocast'
    return None


def forward(input: Tensor, weight: Tensor, rates: Tensor,
            bias: Optional[Tensor], stride: List[int], padding: List[int],
            dilation: List[int], compute_dtype: torch.dtype) -> Tensor:
    """ADC output (CPU, float32/float64, outside autocast: ``compute_dtype``
    is the input dtype)."""
    out = _adc_cpu.forward(input, weight, rates, bias, stride, padding,
                           dilation, BLOCK_BYTES)
    return out.contiguous(memory_format=memory_format(input))


def layer_forward(
        input: Tensor, weight: Tensor, bias: Optional[Tensor],
        fc1_weight: Tensor, fc1_bias: Tensor, fc2_weight: Tensor,
        fc2_bias: Tensor, activation: str, max_rate: Optional[float],
        rate_bound: float, stride: Sequence[int], padding: Sequence[int],
        dilation: Sequence[int]) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Eager inference of an :class:`~mmadc.ops.AdaptiveDilatedConv2d` in
    one call: the rates of its regressor (``fc1``, ReLU, ``fc2``,
    ``activation``, the ``max_rate`` clamp) and the output.

    Returns:
        tuple: ``(None, None)`` where the call is not one it computes
        (other than CPU float32/float64 tensors of one dtype, a gradient
        needed, a non-contiguous input, shapes that are not a valid
        convolution); ``(rates, None)`` where a rate is not finite or
        beyond ``rate_bound`` in magnitude (the op must clamp it);
        ``(rates, output)`` otherwise.
    """
    return _adc_cpu.layer_forward(input, weight, bias, fc1_weight, fc1_bias,
                                  fc2_weight, fc2_bias, activation, max_rate,
                                  rate_bound, stride, padding, dilation,
                                  BLOCK_BYTES)


def backward(grad_out: Tensor, input: Tensor, weight: Tensor, rates: Tensor,
             stride: List[int], padding: List[int], dilation: List[int],
             compute_dtype: torch.dtype, need_x: bool, need_w: bool,
             need_r: bool) -> Tuple[Optional[Tensor], ...]:
    """Input, weight and rate gradients (None where not needed)."""
    grad_x, grad_w, grad_r = _adc_cpu.backward(grad_out, input, weight, rates,
                                               stride, padding, dilation,
                                               need_x, need_w, need_r,
                                               BLOCK_BYTES)
    if need_x:
        grad_x = grad_x.contiguous(memory_format=memory_format(input))
    return grad_x, grad_w, grad_r
