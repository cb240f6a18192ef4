# Copyright (c) mmadc contributors. All rights reserved.
"""Adaptive dilated convolution (ADC) as a registered PyTorch operator.

Semantics (per axis; the paper's Sec. III, with the details it leaves open
fixed here): for input ``x`` of shape ``(N, C_in, H, W)``, weight of shape
``(C_out, C_in, kh, kw)``, stride ``s``, padding ``P`` and base dilation
``d``, output position ``p`` has its kernel centre where the replaced
convolution has it, ``p * s - P + d * (k // 2)``, and tap ``i`` in
``-(k // 2) .. k // 2`` reads the input at ``centre + d * r * i`` by bilinear
interpolation (out-of-image neighbours are zero). ``r`` is the rate of the
input channel's dilation group for that sample: with ``rates`` of shape
``(N, g)``, channel ``c`` uses ``rates[:, c * g // C_in]``.

Rate values are never checked on the fast path (a check would be a
device-to-host synchronisation in every call on a GPU):

* a negative rate is well defined: the footprint is mirrored through the
  kernel centre (tap ``i`` reads ``centre - d * |r| * i``); the rate
  regressor of :class:`~mmadc.ops.AdaptiveDilatedConv2d` never predicts one;
* a rate so large that the taps land outside the image reads zeros there;
* a sample with a NaN or infinite rate gets an all-NaN output and NaN
  gradients, as a convolution of a NaN input would;
* ``MMADC_CHECK_RATES=1`` (or :func:`adc_rate_check`) turns non-finite
  rates into a ``ValueError`` instead, at the cost of that synchronisation.

A non-finite *input* value propagates as NaN, without an error, like
``F.conv2d``, but over a wider window: the sampling loops read both
bilinear neighbours of every tap, also one whose weight is 0 (at integer
positions), and ``0 * inf`` is NaN. At integer rates a bad pixel reaches
the outputs of a ``(k + 2) x (k + 2)`` window (5x5 for a 3x3 kernel; the
negative taps' zero-weight neighbour lies below, the others' above, see
:func:`~mmadc.ops.dilated_sampling.base_row`) where ``F.conv2d``'s is
``k x k``; skipping zero-weight neighbours would put a branch into every
sampling loop for inputs that are corrupt anyway. In
:class:`~mmadc.ops.AdaptiveDilatedConv2d` the rate regressor pools the
whole input, so one bad pixel makes that sample's rates, and thus its whole
output, NaN.

The operator is ``torch.ops.mmadc.adaptive_dilated_conv2d`` with its backward
``torch.ops.mmadc.adaptive_dilated_conv2d_backward``, each defined once
through ``torch.library`` with a fake (shape) kernel and the autograd formula
registered, so that ADC works alike in eager mode, under ``torch.compile``
(no graph break) and in ``torch.export`` programs. Their kernels call the
``forward`` or ``backward`` of the backend that
:mod:`mmadc.ops.implementations` selects (the native CPU kernel, the Triton
kernels, the PyTorch reference or a registered one). On torch older than
2.4 (no ``torch.library.custom_op``) the same kernels and autograd formula
run as a plain ``autograd.Function``: eager mode only.
"""
import contextlib
import math
import os
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .implementations import resolve_backend
from .tensor_layout import memory_format

IntOrPair = Union[int, Sequence[int]]

#: Whether non-finite rates raise (a host synchronisation per call); from
#: ``MMADC_CHECK_RATES=1`` or :func:`adc_rate_check`.
_check_rates = os.environ.get('MMADC_CHECK_RATES', '0') == '1'


@contextlib.contextmanager
def adc_rate_check(enabled: bool = True) -> Iterator[None]:
    """Raise ``ValueError`` for non-finite rates within a ``with`` block.

    A debugging aid: the check reads the rates on the host, which on a GPU
    synchronises every ADC call, and it runs in eager mode only.
    """
    global _check_rates
    previous, _check_rates = _check_rates, bool(enabled)
    try:
        yield
    finally:
        _check_rates = previous


# ---------------------------------------------------------------------------
# Kernels (shared by every implementation)
# ---------------------------------------------------------------------------


def rate_bound(input: Tensor, padding: Sequence[int],
               dilation: Sequence[int]) -> float:
    """The largest rate magnitude the implementations see: beyond it, every
    tap but the centre reads outside the image (see :func:`_safe_rates`).
    Defined for any dilation (a layer's dilation below 1 is rejected by the
    op, after this bound is taken)."""
    height, width = input.shape[2:]
    return (max(height, width) + 2 * max(padding) + 2) / max(min(dilation), 1)


def _safe_rates(rates: Tensor, input: Tensor, padding: List[int],
                dilation: List[int]) -> Tuple[Tensor, Optional[Tensor]]:
    """Rates the implementations can index with, and the finite samples.

    A rate is clamped where all its taps but the centre read outside the
    image anyway (same values, same zero rate gradient), so that no index
    overflows; a non-finite rate is replaced by 0 and its sample reported in
    the mask (None: every sample is finite), to be set to NaN afterwards.
    """
    bound = rate_bound(input, padding, dilation)
    if rates.device.type == 'cpu' and rates.numel():
        # reading CPU values costs no sync; one reduction (NaN propagates)
        largest = float(rates.abs().amax())
        if largest <= bound:
            return rates, None
        if math.isfinite(largest):
            return rates.clamp(-bound, bound), None
    finite = torch.isfinite(rates)
    safe = torch.where(finite, rates.clamp(-bound, bound),
                       torch.zeros_like(rates))
    return safe, finite.all(1)


def _poison(tensor: Tensor, finite: Optional[Tensor]) -> Tensor:
    """``tensor`` with NaN in the samples (dim 0) that are not finite."""
    if finite is None:
        return tensor
    mask = finite.view(-1, *([1] * (tensor.dim() - 1)))
    return tensor.masked_fill(~mask, float('nan'))


def output_size(input: Tensor, weight: Tensor, stride: List[int],
                padding: List[int], dilation: List[int]) -> Tuple[int, int]:
    """``(H_out, W_out)``: the output size of ``F.conv2d`` with these
    arguments, which ADC shares."""
    sizes = []
    for axis in (0, 1):
        extent = input.shape[2 + axis] + 2 * padding[axis] - dilation[axis] * (
            weight.shape[2 + axis] - 1)
        sizes.append((extent - 1) // stride[axis] + 1)
    return sizes[0], sizes[1]


def _forward_kernel(input: Tensor, weight: Tensor, rates: Tensor,
                    bias: Optional[Tensor], stride: List[int],
                    padding: List[int], dilation: List[int],
                    compute_dtype: torch.dtype) -> Tensor:
    safe, finite = _safe_rates(rates, input, padding, dilation)
    backend = resolve_backend(input, compute_dtype, weight)
    out = backend.forward(input, weight, safe, bias, stride, padding, dilation,
                          compute_dtype)
    return _poison(out, finite)


def _forward_fake(input: Tensor, weight: Tensor, rates: Tensor,
                  bias: Optional[Tensor], stride: List[int],
                  padding: List[int], dilation: List[int],
                  compute_dtype: torch.dtype) -> Tensor:
    """Output metadata: ``F.conv2d``'s shape, the input's layout."""
    out_h, out_w = output_size(input, weight, stride, padding, dilation)
    return torch.empty((input.shape[0], weight.shape[0], out_h, out_w),
                       dtype=compute_dtype,
                       device=input.device,
                       memory_format=memory_format(input))


def _backward_kernel(grad_out: Tensor, input: Tensor, weight: Tensor,
                     rates: Tensor, stride: List[int], padding: List[int],
                     dilation: List[int], compute_dtype: torch.dtype,
                     output_mask: List[bool]) -> Tuple[Tensor, Tensor, Tensor]:
    need_x, need_w, need_r = output_mask
    safe, finite = _safe_rates(rates, input, padding, dilation)
    backend = resolve_backend(input, compute_dtype, weight)
    grad_x, grad_w, grad_r = backend.backward(grad_out, input, weight, safe,
                                              stride, padding, dilation,
                                              compute_dtype, need_x, need_w,
                                              need_r)
    # The op returns tensors only: an empty one for a gradient not asked
    # for (the autograd formula turns it into None).
    grad_x = _poison(grad_x, finite) if need_x else input.new_empty(0)
    if need_w:
        grad_w = grad_w.contiguous()
        if finite is not None:
            grad_w = grad_w.masked_fill(~finite.all(), float('nan'))
    else:
        grad_w = weight.new_empty(0)
    grad_r = _poison(grad_r.contiguous(), finite) if need_r \
        else rates.new_empty(0)
    return grad_x, grad_w, grad_r


def _backward_fake(grad_out: Tensor, input: Tensor, weight: Tensor,
                   rates: Tensor, stride: List[int], padding: List[int],
                   dilation: List[int], compute_dtype: torch.dtype,
                   output_mask: List[bool]) -> Tuple[Tensor, Tensor, Tensor]:
    need_x, need_w, need_r = output_mask
    grad_x = torch.empty_like(input, memory_format=memory_format(input)) \
        if need_x else input.new_empty(0)
    grad_w = weight.new_empty(weight.shape) if need_w else weight.new_empty(0)
    grad_r = rates.new_empty(rates.shape) if need_r else rates.new_empty(0)
    return grad_x, grad_w, grad_r


# ---------------------------------------------------------------------------
# Autograd formula (shared by the registered op and the torch < 2.4 path)
# ---------------------------------------------------------------------------


def _setup_context(ctx, inputs, output) -> None:
    input, weight, rates, bias, stride, padding, dilation, dtype = inputs
    ctx.save_for_backward(input, weight, rates)
    ctx.conv_args = (stride, padding, dilation, dtype)
    ctx.bias_dtype = None if bias is None else bias.dtype


def _backward_formula(ctx, grad_out: Tensor):
    input, weight, rates = ctx.saved_tensors
    need_x, need_w, need_r, need_b = ctx.needs_input_grad[:4]
    grad_x = grad_w = grad_r = grad_b = None
    if need_x or need_w or need_r:
        grad_x, grad_w, grad_r = _backward_op(grad_out, input, weight, rates,
                                              *ctx.conv_args,
                                              [need_x, need_w, need_r])
        grad_x = grad_x if need_x else None
        grad_w = grad_w if need_w else None
        grad_r = grad_r if need_r else None
    if need_b:  # False when bias is None
        grad_b = grad_out.sum((0, 2, 3), dtype=ctx.bias_dtype)
    return grad_x, grad_w, grad_r, grad_b, None, None, None, None


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        'adaptive_dilated_conv2d has no second derivative: a gradient of '
        'a gradient through ADC (create_graph=True, e.g. a gradient penalty) '
        'is not supported')


if hasattr(torch.library, 'custom_op'):  # torch >= 2.4
    _forward_op = torch.library.custom_op(
        'mmadc::adaptive_dilated_conv2d', _forward_kernel, mutates_args=())
    _forward_op.register_fake(_forward_fake)
    _backward_op = torch.library.custom_op(
        'mmadc::adaptive_dilated_conv2d_backward',
        _backward_kernel,
        mutates_args=())
    _backward_op.register_fake(_backward_fake)
    _forward_op.register_autograd(
        _backward_formula, setup_context=_setup_context)
    _backward_op.register_autograd(_no_double_backward)
    _apply = torch.ops.mmadc.adaptive_dilated_conv2d
else:  # the same kernels and formula, eager mode only

    class _SecondDerivative(torch.autograd.Function):
        """Identity on a gradient whose own gradient raises: a second
        derivative through ADC fails clearly, as with the registered op."""

        @staticmethod
        def forward(ctx, grad, *inputs):
            return grad.view_as(grad)

        @staticmethod
        def backward(ctx, *grads):
            _no_double_backward(ctx)

    class _AdaptiveDilatedConv2dFunction(torch.autograd.Function):

        @staticmethod
        def forward(ctx, *inputs):
            _setup_context(ctx, inputs, None)
            if inputs[0].device.type == 'meta':  # shapes only (fake kernel)
                return _forward_fake(*inputs)
            return _forward_kernel(*inputs)

        @staticmethod
        def backward(ctx, grad_out):
            with torch.no_grad():
                grads = _backward_formula(ctx, grad_out)
            if not torch.is_grad_enabled():
                return grads
            # create_graph=True: connect each gradient to the tensors it
            # depends on, through a node that refuses to differentiate
            saved = ctx.saved_tensors
            return tuple(
                None if g is None else _SecondDerivative.apply(g, *saved)
                for g in grads)

    def _backward_op(grad_out, *args):
        kernel = _backward_fake if grad_out.device.type == 'meta' else \
            _backward_kernel
        return kernel(grad_out, *args)

    _apply = _AdaptiveDilatedConv2dFunction.apply

# ---------------------------------------------------------------------------
# Eager inference without the dispatcher
# ---------------------------------------------------------------------------

_PYTHON_KEY = torch._C.DispatchKey.Python
_key_included = getattr(torch._C, '_dispatch_tls_is_dispatch_key_included',
                        None)
_functorch_level = getattr(
    getattr(torch._C, '_functorch', None), 'peek_interpreter_stack', None)
_compiling = getattr(
    getattr(torch, 'compiler', None), 'is_compiling', lambda: False)

#: The types of the tensors a direct call takes (None: an absent bias).
_PLAIN_TYPES = frozenset((Tensor, torch.nn.Parameter, type(None)))


def _runs_kernel_directly(*tensors: Optional[Tensor]) -> bool:
    """Whether a call on these tensors (None: an absent bias) may run the
    op's kernel without the dispatcher.

    Eager CPU inference has nothing for the dispatcher to do (no autograd
    graph, no tracer, mode or transform that must see the op), but going
    through it costs two Python round trips of ``torch.library``'s custom
    ops per call: HRNet-W32-ADC's eager batch-1 latency went from
    1.22-1.24x to 1.16-1.17x its baseline's without them
    (``tools/analysis/benchmark_deploy.py``, see README). As with
    ``nn.MultiheadAttention``'s inference fast path, every condition under
    which something must see the op sends the call through it: gradients
    needed, tensor subclasses (fake, functional) or ``__torch_function__``
    overrides, a dispatch mode (FakeTensorMode, make_fx's tracer, a
    logging or FLOP-counting mode), a functorch transform, TorchScript
    tracing, ``torch.compile``/``torch.export``, autocast, and devices other
    than the CPU.
    """
    # first: torch.compile traces this function, and must not reach the
    # checks below (they would break its graph)
    if _compiling() or _key_included is None or _functorch_level is None:
        return False
    if not tensors[0].is_cpu or not _PLAIN_TYPES.issuperset(
            map(type, tensors)):
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in tensors):
        return False
    return not (torch.overrides.has_torch_function(tensors)
                or _key_included(_PYTHON_KEY) or _functorch_level() is not None
                or torch.jit.is_tracing())


# ---------------------------------------------------------------------------
# Functional API
# ---------------------------------------------------------------------------


def _pair(value: IntOrPair, name: str, minimum: int) -> List[int]:
    """Normalise an int-or-pair argument and check its range."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'{name} must be an int or a pair of ints, '
                             f'got {value!r}')
        pair = list(value)
    else:
        pair = [value, value]
    for item in pair:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f'{name} must be an int or a pair of ints, '
                            f'got {value!r}')
        if item < minimum:
            raise ValueError(f'{name} must be >= {minimum}, got {value!r}')
    return pair


def _autocast_dtype(input: Tensor) -> Optional[torch.dtype]:
    """The autocast dtype that applies to ``input``, or None."""
    if input.dtype == torch.float64:
        return None  # autocast leaves float64 alone, as for F.conv2d
    device_type = input.device.type
    if hasattr(torch, 'get_autocast_dtype'):  # torch >= 2.4: any device
        try:
            enabled = torch.is_autocast_enabled(device_type)
        except RuntimeError:  # a device type without autocast support
            return None
        return torch.get_autocast_dtype(device_type) if enabled else None
    if device_type == 'cpu':
        return torch.get_autocast_cpu_dtype() \
            if torch.is_autocast_cpu_enabled() else None
    if device_type == 'cuda':
        return torch.get_autocast_gpu_dtype() \
            if torch.is_autocast_enabled() else None
    return None


def _check_arguments(input: Tensor, weight: Tensor, rates: Tensor,
                     bias: Optional[Tensor], autocast: bool) -> None:
    """Raise a clear error for any argument ADC cannot handle.

    Only metadata is checked (shapes, dtypes, devices): no value, so no
    synchronisation.
    """
    for name, tensor in (('input', input), ('weight', weight), ('rates',
                                                                rates)):
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f'{name} must be a torch.Tensor, got {type(tensor).__name__}')
        if not tensor.is_floating_point():
            raise TypeError(
                f'{name} must be a floating point tensor, got {tensor.dtype}')
    if input.dim() != 4:
        raise ValueError('input must be a 4-D tensor (N, C_in, H, W), got '
                         f'shape {tuple(input.shape)}')
    num, channels = input.shape[:2]
    if weight.dim() != 4:
        raise ValueError('weight must be a 4-D tensor (C_out, C_in, kh, kw), '
                         f'got shape {tuple(weight.shape)}')
    if weight.shape[1] != channels:
        raise ValueError(
            f'input has {channels} channels but weight expects '
            f'{weight.shape[1]} (weight must be (C_out, C_in, kh, kw); '
            'grouped convolution is not supported)')
    if weight.shape[2] % 2 == 0 or weight.shape[3] % 2 == 0:
        raise ValueError('weight must have odd kernel sizes (the taps are '
                         '-(k//2)..k//2), got kernel size '
                         f'{tuple(weight.shape[2:])}')
    if not autocast and weight.dtype != input.dtype:
        raise TypeError(f'weight dtype {weight.dtype} does not match input '
                        f'dtype {input.dtype}')
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError('bias must be a torch.Tensor or None, got '
                            f'{type(bias).__name__}')
        if bias.shape != (weight.shape[0], ):
            raise ValueError(f'bias must have shape ({weight.shape[0]},), '
                             f'got {tuple(bias.shape)}')
        if not autocast and bias.dtype != input.dtype:
            raise TypeError(f'bias dtype {bias.dtype} does not match input '
                            f'dtype {input.dtype}')
    if rates.dim() != 2 or rates.shape[0] != num or rates.shape[1] < 1 \
            or channels % rates.shape[1] != 0:
        raise ValueError(
            'rates must have shape (N, g) = (batch size, dilation groups) '
            f'with g dividing C_in={channels}; got {tuple(rates.shape)} for '
            f'input of shape {tuple(input.shape)}')
    for name, tensor in (('weight', weight), ('rates', rates), ('bias', bias)):
        if tensor is not None and tensor.device != input.device:
            raise ValueError(f'{name} is on {tensor.device} but input is on '
                             f'{input.device}')


def adaptive_dilated_conv2d(input: Tensor,
                            weight: Tensor,
                            rates: Tensor,
                            bias: Optional[Tensor] = None,
                            stride: IntOrPair = 1,
                            padding: IntOrPair = 0,
                            dilation: IntOrPair = 1) -> Tensor:
    """Adaptive dilated convolution with per-sample, per-group rates.

    Equivalent to ``F.conv2d(input, weight, bias, stride, padding,
    dilation)`` when all rates are 1, and to ``F.conv2d`` with dilation
    ``dilation * r`` and padding ``dilation * r * (k // 2)`` when all rates
    equal an integer ``r`` and ``padding = dilation * (k // 2)``. Fractional
    rates read the input by bilinear interpolation. Calls
    ``torch.ops.mmadc.adaptive_dilated_conv2d`` (see the module docstring
    for negative and non-finite rates).

    Under ``torch.autocast`` (float16/bfloat16) the interpolation runs in
    float32, the GEMMs in the autocast dtype (accumulating in float32) and
    the output has the autocast dtype; expect errors of the order of the
    autocast dtype's resolution relative to the output scale, as for
    ``F.conv2d`` under autocast.

    Args:
        input (Tensor): Input of shape ``(N, C_in, H, W)``, contiguous or
            channels_last.
        weight (Tensor): Weight of shape ``(C_out, C_in, kh, kw)`` with odd
            ``kh`` and ``kw``.
        rates (Tensor): Dilation rates of shape ``(N, g)``; ``g`` must
            divide ``C_in`` and channel ``c`` uses group ``c * g // C_in``.
            Differentiable.
        bias (Tensor, optional): Bias of shape ``(C_out, )``.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Base dilation ``d``; tap ``i``
            reads ``d * r * i`` pixels from the kernel centre. Defaults to 1.

    Returns:
        Tensor: Output of shape ``(N, C_out, H_out, W_out)``, the shape of
        ``F.conv2d`` with the same stride, padding and dilation.
    """
    stride = _pair(stride, 'stride', 1)
    padding = _pair(padding, 'padding', 0)
    dilation = _pair(dilation, 'dilation', 1)
    autocast_dtype = _autocast_dtype(input) if isinstance(input,
                                                          Tensor) else None
    _check_arguments(input, weight, rates, bias, autocast_dtype is not None)
    if min(output_size(input, weight, stride, padding, dilation)) < 1:
        raise ValueError(
            f'input of size {tuple(input.shape[2:])} is too small for '
            f'kernel size {tuple(weight.shape[2:])} with padding '
            f'{padding} and dilation {dilation}')
    if _check_rates and not bool(torch.isfinite(rates).all()):
        raise ValueError('rates must be finite, got NaN or inf values '
                         '(MMADC_CHECK_RATES=1)')
    if autocast_dtype is None and _runs_kernel_directly(
            input, weight, rates, bias):
        return _forward_kernel(input, weight, rates, bias, stride, padding,
                               dilation, input.dtype)
    return _apply(input, weight, rates, bias, stride, padding, dilation,
                  autocast_dtype or input.dtype)
