# Copyright (c) mmadc contributors. All rights reserved.
"""The Triton (GPU) path of adaptive dilated convolution.

Importing this module imports ``triton``; :mod:`mmadc.ops.implementations`
does so only when the ``triton`` implementation is asked for, so the
package imports without triton (torch 2.1, CPU-only installs).

The design follows the native CPU kernel (``csrc/adc_cpu.cpp``):

* forward and weight gradient: implicit GEMMs whose reduction dimension is
  ``C_in * kh * kw``; each program builds its tile of bilinear taps in
  registers from the input (four neighbour reads, out-of-image reads are
  zero), so the tap image never goes to memory;
* rate gradient: the same tap tiles give the interpolant's derivative,
  multiplied with the column gradients ``grad_out @ W`` of the tile
  (another ``tl.dot``) and summed per channel;
* input gradient: the adjoint sampling, itself bilinear reads of the column
  gradients with the taps' shifts negated (input row ``h`` takes weight
  ``1 - a`` from the output row ``ho`` with ``ho * stride = h - base - f``
  and weight ``a`` from the one with ``ho * stride = h - base - f - 1``,
  where ``f`` and ``a`` are the tap's integer part and weight; likewise
  along W): every program owns a tile of input pixels and channels, so there
  are no atomics.

Tap positions come from :func:`~mmadc.ops.dilated_sampling.make_axis_plan`
(the integer part and weight of every tap of every sample and dilation
group), the one place where the convention at integer positions lives.
Interpolation weights and accumulation are float32; the GEMM operands are in
the compute dtype (the autocast dtype under autocast), as in the reference.
float32 GEMMs use TF32 exactly when ``torch.backends.cudnn.allow_tf32`` lets
``F.conv2d`` do so.

Kernels are interpreted on CPU tensors when ``TRITON_INTERPRET=1`` was set
before this module was imported (:data:`INTERPRETED`), which is how CI tests
them without a GPU.
"""
from typing import Dict, List, Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .dilated_sampling import make_axis_plan
from .tensor_layout import memory_format

#: Whether this module's kernels were built for Triton's CPU interpreter.
INTERPRETED = bool(triton.knobs.runtime.interpret)

#: dtypes the kernels take (input, weight, rates and the compute dtype).
DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_TL_DTYPES = {
    torch.float32: tl.float32,
    torch.float16: tl.float16,
    torch.bfloat16: tl.bfloat16
}


@triton.jit
def _round_bf16(v):
    """float32 ``v`` rounded to bfloat16 (to nearest even), as float32."""
    bits = v.to(tl.float32).to(tl.int32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & -65536
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _operand(v, GEMM_DTYPE: tl.constexpr, EMULATE: tl.constexpr):
    """A ``tl.dot`` operand in the GEMM dtype.

    The interpreter (``EMULATE``) truncates on casts to bfloat16 and
    multiplies bfloat16 operands wrongly, so there the operand is rounded
    to bfloat16 by hand and kept in float32: the same products, exact in
    float32, and the same float32 accumulation.
    """
    if EMULATE and GEMM_DTYPE == tl.bfloat16:
        return _round_bf16(v)
    return v.to(GEMM_DTYPE)


@triton.jit
def _cast(v, DTYPE: tl.constexpr, EMULATE: tl.constexpr):
    """``v.to(DTYPE)``, rounding to nearest under the interpreter too."""
    if EMULATE and DTYPE == tl.bfloat16:
        return _round_bf16(v).to(DTYPE)
    return v.to(DTYPE)


@triton.jit
def _taps(
        x_ptr, n, ho, wo, offs_k, mask,  #
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        height, width, groups, channels_per_group,  #
        stride_xn, stride_xc, stride_xh, stride_xw,  #
        conv_stride_h, conv_stride_w, base_h, base_w,  #
        KH: tl.constexpr, KW: tl.constexpr,  #
        DERIVATIVE: tl.constexpr):  # yapf: disable
    """Bilinear taps of outputs ``(ho, wo)`` (rows) and reduction indices
    ``offs_k = (c * KH + i) * KW + j`` (columns) of sample ``n``, float32.

    With ``DERIVATIVE``, also the interpolant's derivatives along H and W.
    """
    c = offs_k // (KH * KW)
    i = (offs_k // KW) % KH
    j = offs_k % KW
    plan = n * groups + c // channels_per_group
    k_mask = offs_k < channels_per_group * groups * KH * KW
    floor_y = tl.load(floor_h_ptr + plan * KH + i, mask=k_mask, other=0)
    frac_y = tl.load(frac_h_ptr + plan * KH + i, mask=k_mask, other=0.)
    floor_x = tl.load(floor_w_ptr + plan * KW + j, mask=k_mask, other=0)
    frac_x = tl.load(frac_w_ptr + plan * KW + j, mask=k_mask, other=0.)
    y0 = ho[:, None] * conv_stride_h + base_h + floor_y[None, :]
    x0 = wo[:, None] * conv_stride_w + base_w + floor_x[None, :]
    y1 = y0 + 1
    x1 = x0 + 1
    m = mask & k_mask[None, :]
    in_y0 = m & (y0 >= 0) & (y0 < height)
    in_y1 = m & (y1 >= 0) & (y1 < height)
    in_x0 = (x0 >= 0) & (x0 < width)
    in_x1 = (x1 >= 0) & (x1 < width)
    ptr = x_ptr + n * stride_xn + c[None, :] * stride_xc
    v00 = tl.load(
        ptr + y0 * stride_xh + x0 * stride_xw, mask=in_y0 & in_x0,
        other=0.).to(tl.float32)
    v01 = tl.load(
        ptr + y0 * stride_xh + x1 * stride_xw, mask=in_y0 & in_x1,
        other=0.).to(tl.float32)
    v10 = tl.load(
        ptr + y1 * stride_xh + x0 * stride_xw, mask=in_y1 & in_x0,
        other=0.).to(tl.float32)
    v11 = tl.load(
        ptr + y1 * stride_xh + x1 * stride_xw, mask=in_y1 & in_x1,
        other=0.).to(tl.float32)
    wy = frac_y[None, :]
    wx = frac_x[None, :]
    top = v00 + wx * (v01 - v00)
    bottom = v10 + wx * (v11 - v10)
    value = top + wy * (bottom - top)
    if DERIVATIVE:
        d_y = bottom - top
        d_x = (v01 - v00) + wy * ((v11 - v10) - (v01 - v00))
        return value, d_y, d_x
    return value, value, value


def _autotune(configs: List[triton.Config], key: List[str]):
    """``triton.autotune`` over ``configs``, keyed on the problem sizes
    ``key`` (and the tensors' dtypes).

    The configs set warps and pipeline stages only, which change neither the
    tiles nor how a sum is split, so timing picks a speed, not a result. The
    block sizes stay the launcher's, one per problem size (:class:`_Call`):
    another tile changes the order of a tile's float32 sums (by 1e-7 in the
    interpreter, where ``tl.dot`` is numpy's matmul), and the result would
    depend on which config won. The interpreter has no GPU timer; there
    every config times 0 and the first one runs.
    """

    def untimed(kernel_call, quantiles):
        return [0.] * len(quantiles)

    return triton.autotune(
        configs=configs, key=key, do_bench=untimed if INTERPRETED else None)


#: Launch configs of the two implicit GEMMs (``_adc_forward_kernel``,
#: ``_adc_weight_grad_kernel``): Triton's default (4 warps, 3 stages), a
#: deeper pipeline of the reduction loop, and twice the warps.
GEMM_CONFIGS = [
    triton.Config({}, num_warps=4, num_stages=3),
    triton.Config({}, num_warps=4, num_stages=4),
    triton.Config({}, num_warps=8, num_stages=3),
]
#: What a config's speed depends on: the output's and the reduction's sizes.
GEMM_KEY = ['out_channels', 'out_h', 'out_w', 'groups', 'channels_per_group']


@_autotune(GEMM_CONFIGS, GEMM_KEY)
@triton.jit
def _adc_forward_kernel(
        # input, weight (rows co, columns kk), bias and output
        x_ptr, w_ptr, bias_ptr, out_ptr,  #
        # tap plans (make_axis_plan): integer part and weight of every tap
        # of every (sample, dilation group), along H and along W
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        # sizes
        height, width, out_channels, out_h, out_w,  #
        groups, channels_per_group,  #
        # strides of the input and of the output (elements)
        stride_xn, stride_xc, stride_xh, stride_xw,  #
        stride_on, stride_oc, stride_oh, stride_ow,  #
        # convolution stride and the input row (column) of output row
        # (column) 0 for a zero shift
        conv_stride_h, conv_stride_w, base_h, base_w,  #
        # meta-parameters
        KH: tl.constexpr, KW: tl.constexpr, HAS_BIAS: tl.constexpr,  #
        GEMM_DTYPE: tl.constexpr, PRECISION: tl.constexpr,  #
        EMULATE: tl.constexpr, BLOCK_P: tl.constexpr,  #
        BLOCK_CO: tl.constexpr, BLOCK_K: tl.constexpr):  # yapf: disable
    """``out[n, co, p] = sum_kk taps[p, kk] * w[co, kk] (+ bias)``."""
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)
    n = tl.program_id(2)
    K = channels_per_group * groups * KH * KW
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    p_mask = offs_p < out_h * out_w
    co_mask = offs_co < out_channels
    ho = offs_p // out_w
    wo = offs_p % out_w
    acc = tl.zeros((BLOCK_P, BLOCK_CO), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a, _, _ = _taps(
            x_ptr, n, ho, wo, offs_k, p_mask[:, None],  #
            floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
            height, width, groups, channels_per_group,  #
            stride_xn, stride_xc, stride_xh, stride_xw,  #
            conv_stride_h, conv_stride_w, base_h, base_w,  #
            KH, KW, False)  # yapf: disable
        wt = tl.load(
            w_ptr + offs_co[None, :] * K + offs_k[:, None],
            mask=(offs_k[:, None] < K) & co_mask[None, :],
            other=0.)
        acc += tl.dot(
            _operand(a, GEMM_DTYPE, EMULATE),
            _operand(wt, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(
            bias_ptr + offs_co, mask=co_mask, other=0.).to(tl.float32)[None]
    out = out_ptr + n * stride_on + offs_co[None, :] * stride_oc + \
        ho[:, None] * stride_oh + wo[:, None] * stride_ow
    tl.store(
        out,
        _cast(acc, out_ptr.dtype.element_ty, EMULATE),
        mask=p_mask[:, None] & co_mask[None, :])


@_autotune(GEMM_CONFIGS, GEMM_KEY)
@triton.jit
def _adc_weight_grad_kernel(
        # input, output gradient and the per-sample partial sums
        x_ptr, grad_ptr, part_ptr,  #
        # tap plans, as in _adc_forward_kernel
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        # sizes
        height, width, out_channels, out_h, out_w,  #
        groups, channels_per_group,  #
        # strides of the input and of the output gradient
        stride_xn, stride_xc, stride_xh, stride_xw,  #
        stride_gn, stride_gc, stride_gh, stride_gw,  #
        # convolution geometry, as in _adc_forward_kernel
        conv_stride_h, conv_stride_w, base_h, base_w,  #
        # meta-parameters
        KH: tl.constexpr, KW: tl.constexpr, GEMM_DTYPE: tl.constexpr,  #
        PRECISION: tl.constexpr, EMULATE: tl.constexpr,  #
        BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr,  #
        BLOCK_K: tl.constexpr):  # yapf: disable
    """``part[n, co, kk] = sum_p grad[n, co, p] * taps[p, kk]``."""
    pid_k = tl.program_id(0)
    pid_co = tl.program_id(1)
    n = tl.program_id(2)
    K = channels_per_group * groups * KH * KW
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    offs_co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    co_mask = offs_co < out_channels
    acc = tl.zeros((BLOCK_CO, BLOCK_K), dtype=tl.float32)
    for p0 in range(0, out_h * out_w, BLOCK_P):
        offs_p = p0 + tl.arange(0, BLOCK_P)
        p_mask = offs_p < out_h * out_w
        ho = offs_p // out_w
        wo = offs_p % out_w
        a, _, _ = _taps(
            x_ptr, n, ho, wo, offs_k, p_mask[:, None],  #
            floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
            height, width, groups, channels_per_group,  #
            stride_xn, stride_xc, stride_xh, stride_xw,  #
            conv_stride_h, conv_stride_w, base_h, base_w,  #
            KH, KW, False)  # yapf: disable
        gt = tl.load(
            grad_ptr + n * stride_gn + offs_co[:, None] * stride_gc +
            ho[None, :] * stride_gh + wo[None, :] * stride_gw,
            mask=co_mask[:, None] & p_mask[None, :],
            other=0.)
        acc += tl.dot(
            _operand(gt, GEMM_DTYPE, EMULATE),
            _operand(a, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    tl.store(
        part_ptr + (n * out_channels + offs_co[:, None]) * K + offs_k[None, :],
        acc,
        mask=co_mask[:, None] & (offs_k[None, :] < K))


# The rate and input gradients are not tuned: their tl.sum reduces across
# the warps (over a tile's output positions resp. output channels), so even
# the number of warps could change the result.
@triton.jit
def _adc_rate_grad_kernel(
        # input, weight, output gradient and the per-block partial sums
        x_ptr, w_ptr, grad_ptr, part_ptr,  #
        # tap plans, as in _adc_forward_kernel
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        # sizes
        height, width, out_channels, out_h, out_w,  #
        groups, channels_per_group,  #
        # strides of the input and of the output gradient
        stride_xn, stride_xc, stride_xh, stride_xw,  #
        stride_gn, stride_gc, stride_gh, stride_gw,  #
        # convolution geometry, as in _adc_forward_kernel, and dilation
        conv_stride_h, conv_stride_w, base_h, base_w, dilation_h,  #
        dilation_w,  #
        # meta-parameters
        KH: tl.constexpr, KW: tl.constexpr, GEMM_DTYPE: tl.constexpr,  #
        PRECISION: tl.constexpr, EMULATE: tl.constexpr,  #
        BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr,  #
        BLOCK_K: tl.constexpr):  # yapf: disable
    """``part[n, p_block, kk] = sum_p cols[p, kk] * dtaps/drate[p, kk]``
    with the column gradients ``cols = grad[n, :, p]^T @ w``."""
    pid_p = tl.program_id(0)
    pid_k = tl.program_id(1)
    n = tl.program_id(2)
    K = channels_per_group * groups * KH * KW
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    p_mask = offs_p < out_h * out_w
    k_mask = offs_k < K
    ho = offs_p // out_w
    wo = offs_p % out_w
    cols = tl.zeros((BLOCK_P, BLOCK_K), dtype=tl.float32)
    for c0 in range(0, out_channels, BLOCK_CO):
        offs_co = c0 + tl.arange(0, BLOCK_CO)
        co_mask = offs_co < out_channels
        gt = tl.load(
            grad_ptr + n * stride_gn + offs_co[None, :] * stride_gc +
            ho[:, None] * stride_gh + wo[:, None] * stride_gw,
            mask=p_mask[:, None] & co_mask[None, :],
            other=0.)
        wt = tl.load(
            w_ptr + offs_co[:, None] * K + offs_k[None, :],
            mask=co_mask[:, None] & k_mask[None, :],
            other=0.)
        cols += tl.dot(
            _operand(gt, GEMM_DTYPE, EMULATE),
            _operand(wt, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    _, d_y, d_x = _taps(
        x_ptr, n, ho, wo, offs_k, p_mask[:, None],  #
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        height, width, groups, channels_per_group,  #
        stride_xn, stride_xc, stride_xh, stride_xw,  #
        conv_stride_h, conv_stride_w, base_h, base_w,  #
        KH, KW, True)  # yapf: disable
    # d(tap position)/d(rate) is dilation * tap offset along each axis
    i = ((offs_k // KW) % KH - KH // 2).to(tl.float32) * dilation_h
    j = (offs_k % KW - KW // 2).to(tl.float32) * dilation_w
    total = tl.sum(cols * (i[None, :] * d_y + j[None, :] * d_x), axis=0)
    tl.store(
        part_ptr + (n * tl.num_programs(0) + pid_p) * K + offs_k,
        total,
        mask=k_mask)


@triton.jit
def _adc_input_grad_kernel(
        # output gradient, weight and input gradient
        grad_ptr, w_ptr, grad_x_ptr,  #
        # tap plans, as in _adc_forward_kernel
        floor_h_ptr, frac_h_ptr, floor_w_ptr, frac_w_ptr,  #
        # sizes
        height, width, out_channels, out_h, out_w,  #
        groups, channels_per_group,  #
        # strides of the output gradient and of the input gradient
        stride_gn, stride_gc, stride_gh, stride_gw,  #
        stride_gxn, stride_gxc, stride_gxh, stride_gxw,  #
        # convolution geometry, as in _adc_forward_kernel
        conv_stride_h, conv_stride_w, base_h, base_w,  #
        # meta-parameters
        KH: tl.constexpr, KW: tl.constexpr, GEMM_DTYPE: tl.constexpr,  #
        PRECISION: tl.constexpr, EMULATE: tl.constexpr,  #
        BLOCK_HW: tl.constexpr, BLOCK_CO: tl.constexpr,  #
        BLOCK_C: tl.constexpr, USE_DOT: tl.constexpr):  # yapf: disable
    """``grad_x[n, c, h, w]`` as the adjoint sampling of the column
    gradients: every tap's two rows (and columns) that read pixel ``(h, w)``
    are found from the negated shift, so the pixel gathers its gradient.

    The ``BLOCK_C`` channels of a program share one dilation group (the
    launcher picks ``BLOCK_C`` dividing the group size), hence one shift per
    tap, and the column gradients of the gathered output positions are one
    GEMM with the weight.
    """
    pid_hw = tl.program_id(0)
    pid_c = tl.program_id(1)
    n = tl.program_id(2)
    K = channels_per_group * groups * KH * KW
    offs_hw = pid_hw * BLOCK_HW + tl.arange(0, BLOCK_HW)
    hw_mask = offs_hw < height * width
    h = offs_hw // width
    w = offs_hw % width
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    plan = n * groups + (pid_c * BLOCK_C) // channels_per_group
    acc = tl.zeros((BLOCK_HW, BLOCK_C), dtype=tl.float32)
    for i in range(KH):
        floor_y = tl.load(floor_h_ptr + plan * KH + i)
        frac_y = tl.load(frac_h_ptr + plan * KH + i)
        # output rows whose tap i reads row h as first (weight 1 - frac_y)
        # or second (weight frac_y) neighbour
        num0 = h - base_h - floor_y
        num1 = num0 - 1
        ho0 = num0 // conv_stride_h
        ho1 = num1 // conv_stride_h
        vy0 = (num0 >= 0) & (ho0 * conv_stride_h == num0) & (ho0 < out_h)
        vy1 = (num1 >= 0) & (ho1 * conv_stride_h == num1) & (ho1 < out_h)
        for j in range(KW):
            floor_x = tl.load(floor_w_ptr + plan * KW + j)
            frac_x = tl.load(frac_w_ptr + plan * KW + j)
            num0 = w - base_w - floor_x
            num1 = num0 - 1
            wo0 = num0 // conv_stride_w
            wo1 = num1 // conv_stride_w
            vx0 = (num0 >= 0) & (wo0 * conv_stride_w == num0) & (wo0 < out_w)
            vx1 = (num1 >= 0) & (wo1 * conv_stride_w == num1) & (wo1 < out_w)
            for c0 in range(0, out_channels, BLOCK_CO):
                offs_co = c0 + tl.arange(0, BLOCK_CO)
                co_mask = offs_co < out_channels
                gp = grad_ptr + n * stride_gn + offs_co[None, :] * stride_gc
                m = hw_mask[:, None] & co_mask[None, :]
                g00 = tl.load(
                    gp + ho0[:, None] * stride_gh + wo0[:, None] * stride_gw,
                    mask=m & (vy0 & vx0)[:, None],
                    other=0.).to(tl.float32)
                g01 = tl.load(
                    gp + ho0[:, None] * stride_gh + wo1[:, None] * stride_gw,
                    mask=m & (vy0 & vx1)[:, None],
                    other=0.).to(tl.float32)
                g10 = tl.load(
                    gp + ho1[:, None] * stride_gh + wo0[:, None] * stride_gw,
                    mask=m & (vy1 & vx0)[:, None],
                    other=0.).to(tl.float32)
                g11 = tl.load(
                    gp + ho1[:, None] * stride_gh + wo1[:, None] * stride_gw,
                    mask=m & (vy1 & vx1)[:, None],
                    other=0.).to(tl.float32)
                gsum = (1 - frac_y) * ((1 - frac_x) * g00 + frac_x * g01) + \
                    frac_y * ((1 - frac_x) * g10 + frac_x * g11)
                wt = tl.load(
                    w_ptr + offs_co[:, None] * K +
                    (offs_c[None, :] * KH + i) * KW + j,
                    mask=co_mask[:, None],
                    other=0.)
                if USE_DOT:
                    acc += tl.dot(
                        _operand(gsum, GEMM_DTYPE, EMULATE),
                        _operand(wt, GEMM_DTYPE, EMULATE),
                        input_precision=PRECISION)
                else:
                    acc += tl.sum(
                        _operand(gsum, GEMM_DTYPE, EMULATE).to(
                            tl.float32)[:, :, None] *
                        _operand(wt, GEMM_DTYPE, EMULATE).to(
                            tl.float32)[None, :, :],
                        axis=1)
    out = grad_x_ptr + n * stride_gxn + offs_c[None, :] * stride_gxc + \
        h[:, None] * stride_gxh + w[:, None] * stride_gxw
    tl.store(
        out,
        _cast(acc, grad_x_ptr.dtype.element_ty, EMULATE),
        mask=hw_mask[:, None])


def unsupported_reason(input: Tensor,
                       compute_dtype: torch.dtype,
                       weight: Optional[Tensor] = None) -> Optional[str]:
    """Why the kernels cannot compute this call, or None if they can.

    Args:
        input (Tensor): The call's input.
        compute_dtype (torch.dtype): Its GEMM dtype.
        weight (Tensor, optional): Its weight (None: a 3x3 kernel with as
            many output as input channels), for the 32-bit index range.
    """
    device = input.device.type
    if INTERPRETED and device != 'cpu':
        return ('triton was imported with TRITON_INTERPRET=1, which runs '
                f'kernels on CPU tensors only, input is on {input.device}')
    if not INTERPRETED and device != 'cuda':
        return ('the triton kernels need a CUDA input (or TRITON_INTERPRET=1 '
                f'set before triton is imported), input is on {input.device}')
    for name, dtype in (('input', input.dtype), ('compute dtype',
                                                 compute_dtype)):
        if dtype not in DTYPES:
            return ('the triton kernels take float32/float16/bfloat16, '
                    f'{name} is {dtype}')
    if input.shape[0] == 0:
        return 'the batch is empty'
    num, channels, height, width = input.shape
    out_channels, taps = (channels,
                          9) if weight is None else (weight.shape[0],
                                                     weight.shape[2] *
                                                     weight.shape[3])
    # largest index: the input, the output (at most the input's size times
    # out/in channels), the per-sample weight- and rate-gradient partials
    largest = max(
        input.numel(), num * out_channels * height * width,
        num * channels * taps * max(out_channels, height * width // 16 + 1))
    if largest >= 2**31:
        return 'a tensor would have 2**31 elements or more (32-bit indexing)'
    return None


def _pow2(value: int, low: int, high: int) -> int:
    return max(low, min(high, triton.next_power_of_2(max(value, 1))))


def _strides(prefix: str, tensor: Tensor) -> Dict[str, int]:
    """The strides of an ``(N, C, H, W)`` tensor as the kernels' keyword
    arguments ``stride_<prefix>n``, ``..c``, ``..h``, ``..w``."""
    return dict(
        zip((f'stride_{prefix}{axis}' for axis in 'nchw'), tensor.stride()))


class _Call:
    """Tap plans, shapes and launch constants of one call.

    :attr:`plans`, :attr:`sizes` and :attr:`geometry` are keyword arguments
    that every kernel takes.
    """

    def __init__(self, input: Tensor, weight: Tensor, rates: Tensor,
                 stride: List[int], padding: List[int], dilation: List[int],
                 compute_dtype: torch.dtype) -> None:
        self.num, self.channels, self.height, self.width = input.shape
        self.out_channels, _, self.kh, self.kw = weight.shape
        self.groups = rates.shape[1]
        self.cpg = self.channels // self.groups
        self.num_cols = self.channels * self.kh * self.kw
        # one plan row per (sample, group)
        group_rates = rates.detach().reshape(-1)
        plan_h = make_axis_plan(group_rates, self.kh, self.height, stride[0],
                                padding[0], dilation[0], torch.float32)
        plan_w = make_axis_plan(group_rates, self.kw, self.width, stride[1],
                                padding[1], dilation[1], torch.float32)
        self.out_h, self.out_w = plan_h.out_len, plan_w.out_len
        self.plans = dict(
            floor_h_ptr=plan_h.floor.to(torch.int32).contiguous(),
            frac_h_ptr=plan_h.frac.contiguous(),
            floor_w_ptr=plan_w.floor.to(torch.int32).contiguous(),
            frac_w_ptr=plan_w.frac.contiguous())
        self.sizes = dict(
            height=self.height,
            width=self.width,
            out_channels=self.out_channels,
            out_h=self.out_h,
            out_w=self.out_w,
            groups=self.groups,
            channels_per_group=self.cpg)
        self.geometry = dict(
            conv_stride_h=stride[0],
            conv_stride_w=stride[1],
            base_h=plan_h.base,
            base_w=plan_w.base)
        self.dilation = dilation
        self.compute_dtype = compute_dtype
        self.gemm = _TL_DTYPES[compute_dtype]
        self.precision = 'tf32' if (
            compute_dtype == torch.float32 and not INTERPRETED
            and torch.backends.cudnn.allow_tf32) else 'ieee'
        # the GEMM operand in the compute dtype, rows (co), columns kk
        self.wmat = weight.detach().to(compute_dtype).reshape(
            self.out_channels, self.num_cols).contiguous()
        self.block_p = _pow2(self.out_h * self.out_w, 16, 64)
        self.block_co = _pow2(self.out_channels, 16, 64)
        self.block_k = _pow2(self.num_cols, 16, 32)


def forward(input: Tensor, weight: Tensor, rates: Tensor,
            bias: Optional[Tensor], stride: List[int], padding: List[int],
            dilation: List[int], compute_dtype: torch.dtype) -> Tensor:
    """ADC output in ``compute_dtype``, in the input's memory format."""
    call = _Call(input, weight, rates, stride, padding, dilation,
                 compute_dtype)
    out = torch.empty((call.num, call.out_channels, call.out_h, call.out_w),
                      dtype=compute_dtype,
                      device=input.device,
                      memory_format=memory_format(input))
    bias_arg = call.wmat if bias is None else bias.detach().to(
        compute_dtype).contiguous()
    x = input.detach()
    grid = (triton.cdiv(call.out_h * call.out_w, call.block_p),
            triton.cdiv(call.out_channels, call.block_co), call.num)
    _adc_forward_kernel[grid](
        x_ptr=x,
        w_ptr=call.wmat,
        bias_ptr=bias_arg,
        out_ptr=out,
        **call.plans,
        **call.sizes,
        **_strides('x', x),
        **_strides('o', out),
        **call.geometry,
        KH=call.kh,
        KW=call.kw,
        HAS_BIAS=bias is not None,
        GEMM_DTYPE=call.gemm,
        PRECISION=call.precision,
        EMULATE=INTERPRETED,
        BLOCK_P=call.block_p,
        BLOCK_CO=call.block_co,
        BLOCK_K=call.block_k)
    return out


def backward(grad_out: Tensor, input: Tensor, weight: Tensor, rates: Tensor,
             stride: List[int], padding: List[int], dilation: List[int],
             compute_dtype: torch.dtype, need_x: bool, need_w: bool,
             need_r: bool) -> Tuple[Optional[Tensor], ...]:
    """Input, weight and rate gradients (None where not needed)."""
    call = _Call(input, weight, rates, stride, padding, dilation,
                 compute_dtype)
    x = input.detach()
    grad = grad_out.detach().to(compute_dtype)
    common = dict(
        **call.plans,
        **call.sizes,
        **call.geometry,
        KH=call.kh,
        KW=call.kw,
        GEMM_DTYPE=call.gemm,
        PRECISION=call.precision,
        EMULATE=INTERPRETED,
        BLOCK_CO=call.block_co)
    grad_x = grad_w = grad_r = None
    if need_w:
        part = torch.empty((call.num, call.out_channels, call.num_cols),
                           dtype=torch.float32,
                           device=x.device)

        grid = (triton.cdiv(call.num_cols, call.block_k),
                triton.cdiv(call.out_channels, call.block_co), call.num)
        _adc_weight_grad_kernel[grid](
            x_ptr=x,
            grad_ptr=grad,
            part_ptr=part,
            **_strides('x', x),
            **_strides('g', grad),
            BLOCK_P=call.block_p,
            BLOCK_K=call.block_k,
            **common)
        grad_w = part.sum(0).view(weight.shape).to(weight.dtype)
    if need_r:
        blocks_p = triton.cdiv(call.out_h * call.out_w, call.block_p)
        part = torch.empty((call.num, blocks_p, call.num_cols),
                           dtype=torch.float32,
                           device=x.device)
        grid = (blocks_p, triton.cdiv(call.num_cols, call.block_k), call.num)
        _adc_rate_grad_kernel[grid](
            x_ptr=x,
            w_ptr=call.wmat,
            grad_ptr=grad,
            part_ptr=part,
            **_strides('x', x),
            **_strides('g', grad),
            dilation_h=call.dilation[0],
            dilation_w=call.dilation[1],
            BLOCK_P=call.block_p,
            BLOCK_K=call.block_k,
            **common)
        grad_r = part.view(call.num, blocks_p, call.groups, -1).sum(
            (1, 3)).to(rates.dtype)
    if need_x:
        grad_x = torch.empty_like(x, memory_format=memory_format(x))
        # channels of one program share a dilation group
        block_c = min(32, call.cpg & -call.cpg)
        block_hw = _pow2(call.height * call.width, 16, 64)
        grid = (triton.cdiv(call.height * call.width,
                            block_hw), call.channels // block_c, call.num)
        _adc_input_grad_kernel[grid](
            grad_ptr=grad,
            w_ptr=call.wmat,
            grad_x_ptr=grad_x,
            **_strides('g', grad),
            **_strides('gx', grad_x),
            BLOCK_HW=block_hw,
            BLOCK_C=block_c,
            USE_DOT=block_c >= 16,
            **common)
    return grad_x, grad_w, grad_r
