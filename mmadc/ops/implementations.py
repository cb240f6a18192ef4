# Copyright (c) mmadc contributors. All rights reserved.
"""Which implementation computes an ADC call.

An implementation (a backend) is a module, or any object, with three
functions of the same signature in every backend::

    forward(input, weight, rates, bias, stride, padding, dilation,
            compute_dtype) -> Tensor
    backward(grad_out, input, weight, rates, stride, padding, dilation,
             compute_dtype, need_x, need_w, need_r) -> (grad_x, grad_w,
                                                        grad_r)
    unsupported_reason(input, compute_dtype, weight) -> Optional[str]

``compute_dtype`` is the GEMM dtype (the autocast dtype under autocast, else
the input dtype); a gradient not asked for may be None; the reason says in a
few words why the backend cannot compute a call (None: it can). The rates
reach a backend finite and clamped (see
:mod:`~mmadc.ops.adaptive_dilated_conv`).

The built-in backends are ``native`` (:mod:`mmadc.ops.native_cpu`),
``reference`` (:mod:`mmadc.ops.reference`) and ``triton``
(:mod:`mmadc.ops.triton_kernels`, imported on first use);
:func:`register_backend` adds another.

``auto`` (the default) takes the native CPU kernel for float32/float64 CPU
tensors outside autocast when it was built, and the reference everywhere
else: CUDA, float16/bfloat16 under autocast, an install without a compiler.
A named backend (``native``, ``triton``, or a registered one) raises where it
does not apply; ``reference`` always applies. ``triton`` runs on CUDA
tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before
triton was imported. ``auto`` does not take ``triton`` on CUDA until a GPU
measurement shows it faster than the reference. Select with
:func:`adc_implementation` or the ``MMADC_ADC_IMPL`` environment variable.

The choice is made when the operator runs (inside its kernel), so it also
applies to models compiled with ``torch.compile`` or exported.
"""
import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

from . import native_cpu, reference

#: The built-in implementation names.
IMPLEMENTATIONS = ('auto', 'native', 'reference', 'triton')
_implementation: Optional[str] = None  # None: from MMADC_ADC_IMPL


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


#: Each backend's loader: returns the backend, or raises ImportError (whose
#: message says why) where it cannot be imported.
_LOADERS: Dict[str, Callable[[], Any]] = {
    'native': lambda: native_cpu,
    'reference': lambda: reference,
    'triton': triton_kernels,
}


def _names() -> Tuple[str, ...]:
    """Every name :func:`adc_implementation` takes (:data:`IMPLEMENTATIONS`
    while no backend is registered)."""
    return ('auto', *_LOADERS)


def register_backend(name: str, loader: Callable[[], Any]) -> None:
    """Make a backend selectable by ``name`` (``auto`` never takes it).

    Args:
        name (str): Its name; not ``'auto'`` nor a registered one.
        loader (Callable[[], Any]): Returns the backend (see the module
            docstring) when a call first needs it; raises ImportError where
            it cannot be imported.
    """
    if name in _names():
        raise ValueError(f'ADC implementation {name!r} exists already')
    _LOADERS[name] = loader


def unregister_backend(name: str) -> None:
    """Remove a backend added by :func:`register_backend`.

    Args:
        name (str): The name it was registered with.
    """
    if name not in _LOADERS or name in IMPLEMENTATIONS:
        raise ValueError(f'{name!r} is not a registered ADC backend')
    del _LOADERS[name]


def get_adc_implementation() -> str:
    """The selected implementation: ``'auto'`` or a backend's name."""
    name = _implementation or os.environ.get('MMADC_ADC_IMPL', 'auto')
    if name not in _names():
        raise ValueError(f'MMADC_ADC_IMPL must be one of {_names()}, '
                         f'got {name!r}')
    return name


@contextlib.contextmanager
def adc_implementation(name: str) -> Iterator[None]:
    """Select the ADC implementation within a ``with`` block.

    Args:
        name (str): ``'auto'`` (native where it applies), ``'native'`` or
            ``'triton'`` (raise where it does not), ``'reference'``, or the
            name of a registered backend.
    """
    global _implementation
    if name not in _names():
        raise ValueError(
            f'implementation must be one of {_names()}, got {name!r}')
    previous, _implementation = _implementation, name
    try:
        yield
    finally:
        _implementation = previous


def load_backend(name: str) -> Any:
    """The backend called ``name`` (not ``'auto'``).

    Raises:
        ImportError: It cannot be imported (e.g. triton is missing).
    """
    return _LOADERS[name]()


def _unsupported_reason(name: str, input: torch.Tensor,
                        compute_dtype: torch.dtype,
                        weight: Optional[torch.Tensor]) -> Optional[str]:
    try:
        return load_backend(name).unsupported_reason(input, compute_dtype,
                                                     weight)
    except ImportError as error:  # e.g. triton missing: that is the reason
        return str(error)


def resolve_implementation(input: torch.Tensor,
                           compute_dtype: torch.dtype,
                           weight: Optional[torch.Tensor] = None) -> str:
    """The name of the backend that a call with these arguments runs
    (``'native'``, ``'reference'``, ``'triton'`` or a registered one).

    Args:
        input (Tensor): The call's input.
        compute_dtype (torch.dtype): Its GEMM dtype (the autocast dtype
            under autocast, else the input dtype).
        weight (Tensor, optional): Its weight (sizes the triton kernels'
            index range; None: that of a 3x3 kernel with as many output
            as input channels).

    Raises:
        RuntimeError: A named backend was requested where it does not
            apply.
    """
    name = get_adc_implementation()
    if name == 'auto':
        native = _unsupported_reason('native', input, compute_dtype, weight)
        return 'native' if native is None else 'reference'
    reason = _unsupported_reason(name, input, compute_dtype, weight)
    if reason is not None:
        raise RuntimeError(f'ADC implementation "{name}" requested but '
                           f'{reason}; use "auto" or "reference"')
    return name


def resolve_backend(input: torch.Tensor,
                    compute_dtype: torch.dtype,
                    weight: Optional[torch.Tensor] = None) -> Any:
    """The backend that computes a call with these arguments (see
    :func:`resolve_implementation`, which names it)."""
    return load_backend(resolve_implementation(input, compute_dtype, weight))
