# Copyright (c) mmadc contributors. All rights reserved.
"""Which implementation computes an ADC call.

``auto`` (the default) takes the native CPU kernel
(:mod:`mmadc.ops.native_cpu`) for float32/float64 CPU tensors outside
autocast when it was built, and the reference (:mod:`mmadc.ops.reference`)
everywhere else: CUDA, float16/bfloat16 under autocast, an install without a
compiler. ``native`` and ``triton`` (the Triton kernels of
:mod:`mmadc.ops.triton_kernels`, for CUDA tensors, or CPU tensors when
``TRITON_INTERPRET=1`` was set before triton was imported) raise where they
do not apply; ``reference`` always takes the reference. ``auto`` does not
take ``triton`` on CUDA until a GPU measurement shows it faster than the
reference. Select with :func:`adc_implementation` or the ``MMADC_ADC_IMPL``
environment variable.

The choice is made when the operator runs (inside its kernel), so it also
applies to models compiled with ``torch.compile`` or exported.
"""
import contextlib
import os
from typing import Iterator, Optional

import torch

from . import native_cpu

IMPLEMENTATIONS = ('auto', 'native', 'reference', 'triton')
_implementation: Optional[str] = None  # None: from MMADC_ADC_IMPL


def get_adc_implementation() -> str:
    """The selected implementation, one of :data:`IMPLEMENTATIONS`."""
    name = _implementation or os.environ.get('MMADC_ADC_IMPL', 'auto')
    if name not in IMPLEMENTATIONS:
        raise ValueError(f'MMADC_ADC_IMPL must be one of {IMPLEMENTATIONS}, '
                         f'got {name!r}')
    return name


@contextlib.contextmanager
def adc_implementation(name: str) -> Iterator[None]:
    """Select the ADC implementation within a ``with`` block.

    Args:
        name (str): ``'auto'`` (native where it applies), ``'native'`` or
            ``'triton'`` (raise where it does not) or ``'reference'``.
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


def triton_kernels():
    """The module of the Triton kernels, imported on first use.

    Raises:
        ImportError: triton (>= 3.0) is not installed.
    """
    try:
        import triton
    except ImportError as error:
        raise ImportError(f'triton is not installed ({error})') from None
    version = triton.__version__
    if int(version.split('.')[0]) < 3:
        raise ImportError(
            f'the triton kernels need triton >= 3.0, found {version}')
    from . import triton_kernels as module
    return module


def resolve_implementation(input: torch.Tensor,
                           compute_dtype: torch.dtype,
                           weight: Optional[torch.Tensor] = None) -> str:
    """``'native'``, ``'triton'`` or ``'reference'``: what a call with these
    runs.

    Args:
        input (Tensor): The call's input.
        compute_dtype (torch.dtype): Its GEMM dtype (the autocast dtype
            under autocast, else the input dtype).
        weight (Tensor, optional): Its weight (sizes the triton kernels'
            index range; None: that of a 3x3 kernel with as many output
            as input channels).

    Raises:
        RuntimeError: ``native`` or ``triton`` was requested where it does
            not apply.
    """
    name = get_adc_implementation()
    if name == 'reference':
        return 'reference'
    if name == 'triton':
        try:
            reason = triton_kernels().unsupported_reason(
                input, compute_dtype, weight)
        except ImportError as error:
            reason = str(error)
        if reason is None:
            return 'triton'
        raise RuntimeError(f'ADC implementation "triton" requested but '
                           f'{reason}; use "auto" or "reference"')
    reason = None
    if not native_cpu.native_cpu_available():
        reason = ('mmadc was installed without its native CPU kernel '
                  '(no C++ compiler at install time)')
    elif input.device.type != 'cpu':
        reason = f'the native kernel is CPU-only, input is on {input.device}'
    elif input.dtype not in (torch.float32, torch.float64):
        reason = f'the native kernel takes float32/float64, not {input.dtype}'
    elif compute_dtype != input.dtype:
        reason = 'the native kernel does not run under autocast'
    if reason is None:
        return 'native'
    if name == 'native':
        raise RuntimeError(f'ADC implementation "native" requested but '
                           f'{reason}; use "auto" or "reference"')
    return 'reference'
