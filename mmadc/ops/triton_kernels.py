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
from typing import List, Optional, Tuple

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
def _taps(x_ptr, n, ho, wo, kk, mask, fy_ptr, ay_ptr, fx_ptr, ax_ptr, H, W, G,
          CPG, sxn, sxc, sxh, sxw, stride_h, stride_w, base_h, base_w,
          KH: tl.constexpr, KW: tl.constexpr, DERIVATIVE: tl.constexpr):
    """Bilinear taps of outputs ``(ho, wo)`` (rows) and reduction indices
    ``kk = (c * KH + i) * KW + j`` (columns) of sample ``n``, float32.

    With ``DERIVATIVE``, also the interpolant's derivatives along H and W.
    """
    c = kk // (KH * KW)
    i = (kk // KW) % KH
    j = kk % KW
    plan = (n * G + c // CPG)
    kmask = kk < CPG * G * KH * KW
    fy = tl.load(fy_ptr + plan * KH + i, mask=kmask, other=0)
    ay = tl.load(ay_ptr + plan * KH + i, mask=kmask, other=0.)
    fx = tl.load(fx_ptr + plan * KW + j, mask=kmask, other=0)
    ax = tl.load(ax_ptr + plan * KW + j, mask=kmask, other=0.)
    y0 = ho[:, None] * stride_h + base_h + fy[None, :]
    x0 = wo[:, None] * stride_w + base_w + fx[None, :]
    y1 = y0 + 1
    x1 = x0 + 1
    m = mask & kmask[None, :]
    my0 = m & (y0 >= 0) & (y0 < H)
    my1 = m & (y1 >= 0) & (y1 < H)
    mx0 = (x0 >= 0) & (x0 < W)
    mx1 = (x1 >= 0) & (x1 < W)
    ptr = x_ptr + n * sxn + c[None, :] * sxc
    v00 = tl.load(
        ptr + y0 * sxh + x0 * sxw, mask=my0 & mx0, other=0.).to(tl.float32)
    v01 = tl.load(
        ptr + y0 * sxh + x1 * sxw, mask=my0 & mx1, other=0.).to(tl.float32)
    v10 = tl.load(
        ptr + y1 * sxh + x0 * sxw, mask=my1 & mx0, other=0.).to(tl.float32)
    v11 = tl.load(
        ptr + y1 * sxh + x1 * sxw, mask=my1 & mx1, other=0.).to(tl.float32)
    wy = ay[None, :]
    wx = ax[None, :]
    top = v00 + wx * (v01 - v00)
    bottom = v10 + wx * (v11 - v10)
    value = top + wy * (bottom - top)
    if DERIVATIVE:
        d_y = bottom - top
        d_x = (v01 - v00) + wy * ((v11 - v10) - (v01 - v00))
        return value, d_y, d_x
    return value, value, value


@triton.jit
def _adc_forward_kernel(x_ptr, w_ptr, b_ptr, fy_ptr, ay_ptr, fx_ptr, ax_ptr,
                        out_ptr, H, W, Cout, Ho, Wo, G, CPG, sxn, sxc, sxh,
                        sxw, son, soc, soh, sow, stride_h, stride_w, base_h,
                        base_w, KH: tl.constexpr, KW: tl.constexpr,
                        HAS_BIAS: tl.constexpr, GEMM_DTYPE: tl.constexpr,
                        PRECISION: tl.constexpr, EMULATE: tl.constexpr,
                        BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    """``out[n, co, p] = sum_kk taps[p, kk] * w[co, kk] (+ bias)``."""
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)
    n = tl.program_id(2)
    K = CPG * G * KH * KW
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    pmask = p < Ho * Wo
    comask = co < Cout
    ho = p // Wo
    wo = p % Wo
    acc = tl.zeros((BLOCK_P, BLOCK_CO), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        a, _, _ = _taps(x_ptr, n, ho, wo, kk, pmask[:, None], fy_ptr, ay_ptr,
                        fx_ptr, ax_ptr, H, W, G, CPG, sxn, sxc, sxh, sxw,
                        stride_h, stride_w, base_h, base_w, KH, KW, False)
        wt = tl.load(
            w_ptr + co[None, :] * K + kk[:, None],
            mask=(kk[:, None] < K) & comask[None, :],
            other=0.)
        acc += tl.dot(
            _operand(a, GEMM_DTYPE, EMULATE),
            _operand(wt, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=comask, other=0.).to(tl.float32)[None]
    out = out_ptr + n * son + co[None, :] * soc + ho[:, None] * soh + \
        wo[:, None] * sow
    tl.store(
        out,
        _cast(acc, out_ptr.dtype.element_ty, EMULATE),
        mask=pmask[:, None] & comask[None, :])


@triton.jit
def _adc_weight_grad_kernel(x_ptr, g_ptr, fy_ptr, ay_ptr, fx_ptr, ax_ptr,
                            part_ptr, H, W, Cout, Ho, Wo, G, CPG, sxn, sxc,
                            sxh, sxw, sgn, sgc, sgh, sgw, stride_h, stride_w,
                            base_h, base_w, KH: tl.constexpr, KW: tl.constexpr,
                            GEMM_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                            EMULATE: tl.constexpr, BLOCK_P: tl.constexpr,
                            BLOCK_CO: tl.constexpr, BLOCK_K: tl.constexpr):
    """``part[n, co, kk] = sum_p grad[n, co, p] * taps[p, kk]``."""
    pid_k = tl.program_id(0)
    pid_co = tl.program_id(1)
    n = tl.program_id(2)
    K = CPG * G * KH * KW
    kk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    comask = co < Cout
    acc = tl.zeros((BLOCK_CO, BLOCK_K), dtype=tl.float32)
    for p0 in range(0, Ho * Wo, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        pmask = p < Ho * Wo
        ho = p // Wo
        wo = p % Wo
        a, _, _ = _taps(x_ptr, n, ho, wo, kk, pmask[:, None], fy_ptr, ay_ptr,
                        fx_ptr, ax_ptr, H, W, G, CPG, sxn, sxc, sxh, sxw,
                        stride_h, stride_w, base_h, base_w, KH, KW, False)
        gt = tl.load(
            g_ptr + n * sgn + co[:, None] * sgc + ho[None, :] * sgh +
            wo[None, :] * sgw,
            mask=comask[:, None] & pmask[None, :],
            other=0.)
        acc += tl.dot(
            _operand(gt, GEMM_DTYPE, EMULATE),
            _operand(a, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    tl.store(
        part_ptr + (n * Cout + co[:, None]) * K + kk[None, :],
        acc,
        mask=comask[:, None] & (kk[None, :] < K))


@triton.jit
def _adc_rate_grad_kernel(x_ptr, w_ptr, g_ptr, fy_ptr, ay_ptr, fx_ptr, ax_ptr,
                          part_ptr, H, W, Cout, Ho, Wo, G, CPG, sxn, sxc, sxh,
                          sxw, sgn, sgc, sgh, sgw, stride_h, stride_w, base_h,
                          base_w, dil_h, dil_w, KH: tl.constexpr,
                          KW: tl.constexpr, GEMM_DTYPE: tl.constexpr,
                          PRECISION: tl.constexpr, EMULATE: tl.constexpr,
                          BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr,
                          BLOCK_K: tl.constexpr):
    """``part[n, p_block, kk] = sum_p cols[p, kk] * dtaps/drate[p, kk]``
    with the column gradients ``cols = grad[n, :, p]^T @ w``."""
    pid_p = tl.program_id(0)
    pid_k = tl.program_id(1)
    n = tl.program_id(2)
    K = CPG * G * KH * KW
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    kk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    pmask = p < Ho * Wo
    kmask = kk < K
    ho = p // Wo
    wo = p % Wo
    cols = tl.zeros((BLOCK_P, BLOCK_K), dtype=tl.float32)
    for c0 in range(0, Cout, BLOCK_CO):
        co = c0 + tl.arange(0, BLOCK_CO)
        comask = co < Cout
        gt = tl.load(
            g_ptr + n * sgn + co[None, :] * sgc + ho[:, None] * sgh +
            wo[:, None] * sgw,
            mask=pmask[:, None] & comask[None, :],
            other=0.)
        wt = tl.load(
            w_ptr + co[:, None] * K + kk[None, :],
            mask=comask[:, None] & kmask[None, :],
            other=0.)
        cols += tl.dot(
            _operand(gt, GEMM_DTYPE, EMULATE),
            _operand(wt, GEMM_DTYPE, EMULATE),
            input_precision=PRECISION)
    _, d_y, d_x = _taps(x_ptr, n, ho, wo, kk, pmask[:, None], fy_ptr, ay_ptr,
                        fx_ptr, ax_ptr, H, W, G, CPG, sxn, sxc, sxh, sxw,
                        stride_h, stride_w, base_h, base_w, KH, KW, True)
    # d(tap position)/d(rate) is dilation * tap offset along each axis
    i = ((kk // KW) % KH - KH // 2).to(tl.float32) * dil_h
    j = (kk % KW - KW // 2).to(tl.float32) * dil_w
    total = tl.sum(cols * (i[None, :] * d_y + j[None, :] * d_x), axis=0)
    tl.store(
        part_ptr + (n * tl.num_programs(0) + pid_p) * K + kk,
        total,
        mask=kmask)


@triton.jit
def _adc_input_grad_kernel(g_ptr, w_ptr, fy_ptr, ay_ptr, fx_ptr, ax_ptr,
                           gx_ptr, H, W, Cout, Ho, Wo, G, CPG, sgn, sgc, sgh,
                           sgw, sxn, sxc, sxh, sxw, stride_h, stride_w, base_h,
                           base_w, KH: tl.constexpr, KW: tl.constexpr,
                           GEMM_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                           EMULATE: tl.constexpr, BLOCK_HW: tl.constexpr,
                           BLOCK_CO: tl.constexpr, BLOCK_C: tl.constexpr,
                           USE_DOT: tl.constexpr):
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
    K = CPG * G * KH * KW
    q = pid_hw * BLOCK_HW + tl.arange(0, BLOCK_HW)
    qmask = q < H * W
    h = q // W
    w = q % W
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    plan = n * G + (pid_c * BLOCK_C) // CPG
    acc = tl.zeros((BLOCK_HW, BLOCK_C), dtype=tl.float32)
    for i in range(KH):
        fy = tl.load(fy_ptr + plan * KH + i)
        ay = tl.load(ay_ptr + plan * KH + i)
        # output rows whose tap i reads row h as first (weight 1 - ay) or
        # second (weight ay) neighbour
        num0 = h - base_h - fy
        num1 = num0 - 1
        ho0 = num0 // stride_h
        ho1 = num1 // stride_h
        vy0 = (num0 >= 0) & (ho0 * stride_h == num0) & (ho0 < Ho)
        vy1 = (num1 >= 0) & (ho1 * stride_h == num1) & (ho1 < Ho)
        for j in range(KW):
            fx = tl.load(fx_ptr + plan * KW + j)
            ax = tl.load(ax_ptr + plan * KW + j)
            num0 = w - base_w - fx
            num1 = num0 - 1
            wo0 = num0 // stride_w
            wo1 = num1 // stride_w
            vx0 = (num0 >= 0) & (wo0 * stride_w == num0) & (wo0 < Wo)
            vx1 = (num1 >= 0) & (wo1 * stride_w == num1) & (wo1 < Wo)
            for c0 in range(0, Cout, BLOCK_CO):
                co = c0 + tl.arange(0, BLOCK_CO)
                comask = co < Cout
                gp = g_ptr + n * sgn + co[None, :] * sgc
                m = qmask[:, None] & comask[None, :]
                g00 = tl.load(
                    gp + ho0[:, None] * sgh + wo0[:, None] * sgw,
                    mask=m & (vy0 & vx0)[:, None],
                    other=0.).to(tl.float32)
                g01 = tl.load(
                    gp + ho0[:, None] * sgh + wo1[:, None] * sgw,
                    mask=m & (vy0 & vx1)[:, None],
                    other=0.).to(tl.float32)
                g10 = tl.load(
                    gp + ho1[:, None] * sgh + wo0[:, None] * sgw,
                    mask=m & (vy1 & vx0)[:, None],
                    other=0.).to(tl.float32)
                g11 = tl.load(
                    gp + ho1[:, None] * sgh + wo1[:, None] * sgw,
                    mask=m & (vy1 & vx1)[:, None],
                    other=0.).to(tl.float32)
                gsum = (1 - ay) * ((1 - ax) * g00 + ax * g01) + \
                    ay * ((1 - ax) * g10 + ax * g11)
                wt = tl.load(
                    w_ptr + co[:, None] * K + (c[None, :] * KH + i) * KW + j,
                    mask=comask[:, None],
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
    out = gx_ptr + n * sxn + c[None, :] * sxc + h[:, None] * sxh + \
        w[:, None] * sxw
    tl.store(
        out, _cast(acc, gx_ptr.dtype.element_ty, EMULATE), mask=qmask[:, None])


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


class _Call:
    """Tap plans, shapes and launch constants of one call."""

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
        self.plans = (plan_h.floor.to(torch.int32).contiguous(),
                      plan_h.frac.contiguous(),
                      plan_w.floor.to(torch.int32).contiguous(),
                      plan_w.frac.contiguous())
        self.geometry = (stride[0], stride[1], plan_h.base, plan_w.base)
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

    def sizes(self) -> Tuple[int, ...]:
        return (self.height, self.width, self.out_channels, self.out_h,
                self.out_w, self.groups, self.cpg)


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
    grid = (triton.cdiv(call.out_h * call.out_w, call.block_p),
            triton.cdiv(call.out_channels, call.block_co), call.num)
    _adc_forward_kernel[grid](
        input.detach(),
        call.wmat,
        bias_arg,
        *call.plans,
        out,
        *call.sizes(),
        *input.stride(),
        *out.stride(),
        *call.geometry,
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
            x,
            grad,
            *call.plans,
            part,
            *call.sizes(),
            *x.stride(),
            *grad.stride(),
            *call.geometry,
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
            x,
            call.wmat,
            grad,
            *call.plans,
            part,
            *call.sizes(),
            *x.stride(),
            *grad.stride(),
            *call.geometry,
            *call.dilation,
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
            grad,
            call.wmat,
            *call.plans,
            grad_x,
            *call.sizes(),
            *grad.stride(),
            *grad_x.stride(),
            *call.geometry,
            BLOCK_HW=block_hw,
            BLOCK_C=block_c,
            USE_DOT=block_c >= 16,
            **common)
    return grad_x, grad_w, grad_r
