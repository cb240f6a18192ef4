# Copyright (c) mmadc contributors. All rights reserved.
"""The reference implementation of adaptive dilated convolution.

Written in PyTorch operations, so it serves every device and dtype the
native kernels do not (CUDA, float16/bfloat16 under autocast, an install
without a compiler); tests check it against ``F.conv2d``, ``deform_conv2d``
and finite differences. :mod:`mmadc.ops.adaptive_dilated_conv` registers it
as a kernel of the ``mmadc::adaptive_dilated_conv2d`` operator.

* forward: a separable im2col builds, per chunk of samples, the "tap image"
  ``Z[n, c, ho * kh + i, wo * kw + j]`` = bilinear read of tap ``(i, j)``
  for output ``(ho, wo)``, by a 1-D interpolation along W and then along H
  (each a row gather, see :mod:`mmadc.ops.dilated_sampling`); the output is
  ``conv2d(Z, weight, bias, stride=(kh, kw))``, i.e. the GEMM runs in the
  backend's tuned convolution (oneDNN, cuDNN);
* backward: only the needed gradients, recomputing ``Z`` chunk by chunk
  (nothing but the input, the weight and the rates is saved, like
  ``nn.Conv2d``). The weight gradient is that convolution's weight gradient
  on ``Z``; the input gradient pulls the column gradients
  ``weight^T @ grad_out`` back through the two passes with their adjoints
  (reads with negated shifts: no scatter, no atomics); the rate gradient is
  the inner product of the column gradients with the derivative of the
  interpolant (``i * dM/dy + j * dM/dx``; at a kink, the derivative as the
  rate increases, see :func:`~mmadc.ops.dilated_sampling.base_row`), summed
  over each group's channels.

On CPU the op is memory-bound next to the convolution (it moves about
``k * k`` times the input through memory several times), so samples are
processed in cache-sized chunks (:data:`CHUNK_BYTES`) with per-thread scratch
buffers (:class:`_Workspace`). On a GPU a chunk is sized by the device's
memory (:func:`chunk_bytes`), and no float64 is used for float32 rates
(the sampling plans are exact in float32, see
:func:`~mmadc.ops.dilated_sampling.make_axis_plan`).
"""
import math
import threading
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .dilated_sampling import (Bags, adjoint_bags, gather, init_source_buffer,
                               make_axis_plan, resample_bags)
from .tensor_layout import memory_format

#: Samples are processed in chunks whose sampled columns take about this many
#: bytes, so that the temporaries stay cache resident and are recycled by the
#: allocator: on CPU, fresh multi-MB allocations are dominated by page
#: faults. On GPUs (caching allocator) chunks only need to bound memory:
#: there they take :data:`DEVICE_MEMORY_FRACTION` of the device's memory
#: (the other temporaries of a chunk take about twice as much), so that a
#: training batch is usually one chunk, i.e. one call per operation.
CHUNK_BYTES = {'cpu': 16 << 20}
DEVICE_MEMORY_FRACTION = 1 / 16
DEFAULT_CHUNK_BYTES = 1 << 30


def chunk_bytes(device: torch.device) -> int:
    """The bytes of sampled columns that one chunk of samples may take."""
    if device.type in CHUNK_BYTES:
        return CHUNK_BYTES[device.type]
    if device.type == 'cuda':
        total = torch.cuda.get_device_properties(device).total_memory
        return int(total * DEVICE_MEMORY_FRACTION)
    return DEFAULT_CHUNK_BYTES


class _Workspace(threading.local):
    """Per-thread scratch buffers for the temporaries of one call (CPU).

    glibc serves multi-MB allocations with fresh ``mmap`` pages (or trims
    them back to the OS), so every chunk would pay a page fault per 4 KiB
    of its temporaries; on the shapes of interest that costs as much as the
    arithmetic. Temporaries that live within one forward or backward call
    are therefore taken from grow-only buffers kept per thread, named by
    role, shared by all ADC layers (like a convolution library's scratch
    pad). They never escape a call. :func:`release_workspace` frees them.
    """

    def __init__(self) -> None:
        self.buffers: Dict[Tuple[str, torch.dtype], Tensor] = {}

    def get(self, name: str, shape: Tuple[int, ...], dtype: torch.dtype,
            device: torch.device) -> Tensor:
        """An uninitialised contiguous tensor of ``shape``."""
        if device.type != 'cpu':  # caching allocators need no help
            return torch.empty(shape, dtype=dtype, device=device)
        numel = math.prod(shape)
        buf = self.buffers.get((name, dtype))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype)
            self.buffers[(name, dtype)] = buf
        return buf[:numel].view(shape)


_WORKSPACE = _Workspace()


def release_workspace() -> None:
    """Free the calling thread's ADC scratch buffers."""
    _WORKSPACE.buffers.clear()


class _Geometry:
    """Shapes, sampling bags and the chunked im2col of one call.

    The im2col produces, per sample, the "tap image" ``Z`` of shape
    ``(C_in, H_out * kh, W_out * kw)`` with
    ``Z[c, ho * kh + i, wo * kw + j]`` the bilinear read of tap ``(i, j)``
    for output ``(ho, wo)``. Then ``conv2d(Z, weight, stride=(kh, kw))`` is
    exactly the ADC output, computed by the backend's tuned convolution
    (oneDNN / cuDNN), and its weight gradient the ADC weight gradient.
    """

    def __init__(self, input: Tensor, weight: Tensor, rates: Tensor,
                 stride: Tuple[int, int], padding: Tuple[int, int],
                 dilation: Tuple[int, int]) -> None:
        self.num, self.channels, self.height, self.width = input.shape
        self.out_channels, _, self.kh, self.kw = weight.shape
        self.device = input.device
        self.groups = rates.shape[1]
        self.dilation = dilation
        # Interpolation always in >= float32 (float64 for float64 data).
        self.sample_dtype = (
            torch.float64 if input.dtype == torch.float64 else torch.float32)
        # one rate per (sample, channel) plane, planes ordered n * C + c
        plane_rates = rates.detach().repeat_interleave(
            self.channels // self.groups, dim=1).reshape(-1)
        self.plan_h = make_axis_plan(plane_rates, self.kh, self.height,
                                     stride[0], padding[0], dilation[0],
                                     self.sample_dtype)
        self.plan_w = make_axis_plan(plane_rates, self.kw, self.width,
                                     stride[1], padding[1], dilation[1],
                                     self.sample_dtype)
        self.out_h, self.out_w = self.plan_h.out_len, self.plan_w.out_len
        self.num_cols = self.channels * self.kh * self.kw
        self.length = self.out_h * self.out_w
        budget = chunk_bytes(input.device)
        per_sample = self.num_cols * self.length * torch.finfo(
            self.sample_dtype).bits // 8
        self.chunk = max(1, min(self.num, budget // max(per_sample, 1)))
        self.chunk_planes = self.chunk * self.channels
        # W pass: rows (p, wo, j) of length H, read from the transposed
        # input; H pass: rows (p, ho, i) of length W_out * kw, read from the
        # transposed W-pass output; i.e. Z.
        self.bags_w = resample_bags(
            self.plan_w, 1, self.chunk_planes, taps_inner=True)
        self.bags_h = resample_bags(
            self.plan_h, 1, self.chunk_planes, taps_inner=True)

    def chunks(self):
        """Sample ranges ``(n0, n1)`` processed together."""
        for n0 in range(0, self.num, self.chunk):
            yield n0, min(n0 + self.chunk, self.num)

    def sample(
            self, input: Tensor, n0: int, n1: int,
            need_z: bool) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """Separable im2col of samples ``n0 .. n1 - 1``.

        Returns:
            tuple: ``xt``, the source buffer of the W pass (rows ``(p, w)``
            of length H: the transposed input); ``maps``, the W pass output
            (rows ``(p, wo, j)`` of length H: the input interpolated along W
            for tap ``j``, stride applied); ``row_maps``, the source buffer
            of the H pass (``maps`` transposed to rows ``(p, h)`` of length
            ``W_out * kw``); and ``Z`` of shape
            ``(n, C_in, H_out * kh, W_out * kw)``, or None.
        """
        num, p0, p1 = n1 - n0, n0 * self.channels, n1 * self.channels
        planes = p1 - p0
        xt = self.buffer('xt', planes * self.width + 1, self.height)
        init_source_buffer(xt).view(num, self.channels, self.width,
                                    self.height).copy_(input[n0:n1].transpose(
                                        2, 3))
        row_len = self.out_w * self.kw
        maps = gather(xt, self.bags_w.planes(p0, p1),
                      self.buffer('maps', planes * row_len, self.height))
        row_maps = self.buffer('row_maps', planes * self.height + 1, row_len)
        init_source_buffer(row_maps).view(planes, self.height, row_len).copy_(
            maps.view(planes, row_len, self.height).transpose(1, 2))
        taps = None
        if need_z:
            taps = gather(
                row_maps, self.bags_h.planes(p0, p1),
                self.buffer('taps', planes * self.out_h * self.kh,
                            row_len)).view(num, self.channels,
                                           self.out_h * self.kh, row_len)
        return xt, maps, row_maps, taps

    def buffer(self, name: str, *shape: int) -> Tensor:
        """A scratch tensor in the sampling dtype (see :class:`_Workspace`).
        """
        return _WORKSPACE.get(name, shape, self.sample_dtype, self.device)


def unsupported_reason(input: Tensor,
                       compute_dtype: torch.dtype,
                       weight: Optional[Tensor] = None) -> Optional[str]:
    """None: the reference computes every call (any device and dtype)."""
    return None


def forward(input: Tensor, weight: Tensor, rates: Tensor,
            bias: Optional[Tensor], stride: List[int], padding: List[int],
            dilation: List[int], compute_dtype: torch.dtype) -> Tensor:
    """ADC output; the convolution/GEMMs and the output in ``compute_dtype``.

    ``compute_dtype`` is the autocast dtype under autocast, else the input
    dtype; the interpolation always runs in float32 or float64.
    """
    # Casts are explicit below; autocast must not re-cast anything.
    with torch.autocast(input.device.type, enabled=False):
        geo = _Geometry(input, weight, rates, stride, padding, dilation)
        weight_g = weight.to(compute_dtype)
        bias_g = None if bias is None else bias.to(compute_dtype)
        out = None
        for n0, n1 in geo.chunks():
            taps = geo.sample(input, n0, n1, need_z=True)[3]
            part = F.conv2d(
                taps.to(compute_dtype),
                weight_g,
                bias_g,
                stride=(geo.kh, geo.kw))
            if n1 - n0 == geo.num:
                out = part
            else:
                if out is None:
                    out = part.new_empty(geo.num, *part.shape[1:])
                out[n0:n1] = part
        if out is None:  # empty batch
            out = input.new_zeros(
                0, geo.out_channels, geo.out_h, geo.out_w, dtype=compute_dtype)
    return out.contiguous(memory_format=memory_format(input))


def backward(grad_out: Tensor, input: Tensor, weight: Tensor, rates: Tensor,
             stride: List[int], padding: List[int], dilation: List[int],
             compute_dtype: torch.dtype, need_x: bool, need_w: bool,
             need_r: bool) -> Tuple[Optional[Tensor], ...]:
    """Input, weight and rate gradients (None where not needed)."""
    with torch.autocast(grad_out.device.type, enabled=False):
        geo = _Geometry(input, weight, rates, stride, padding, dilation)
        return _backward(geo, compute_dtype, input, weight, rates, grad_out,
                         need_x, need_w, need_r)


def _backward(geo: _Geometry, gemm_dtype: torch.dtype, input: Tensor,
              weight: Tensor, rates: Tensor, grad_out: Tensor, need_x: bool,
              need_w: bool, need_r: bool):
    """Input, weight and rate gradients, chunk by chunk.

    Per chunk the tap image ``Z`` is recomputed for the weight gradient (the
    weight gradient of ``conv2d(Z, weight, stride=(kh, kw))``). For the input
    and the rates, the column gradients ``U = W^T @ grad`` (rows
    ``(p, i, j, ho)``) are pulled back through the H pass and then the W pass
    with the adjoint reads (see :func:`_backward_sampling`).
    """
    device = input.device
    grad = grad_out.to(gemm_dtype).contiguous()
    weight_g = weight.to(gemm_dtype)
    grad_x = grad_w = grad_r = None
    if need_x:
        grad_x = torch.empty_like(input, memory_format=memory_format(input))
    if need_w:
        # accumulate over chunks in the weight's precision
        grad_w = torch.zeros_like(weight)
    if need_r:
        grad_rho = torch.empty(
            geo.num * geo.channels, dtype=geo.sample_dtype, device=device)
    if need_x or need_r:
        wmat_t = weight_g.reshape(geo.out_channels,
                                  geo.num_cols).t().contiguous()
        # U has rows (p, i, j, ho) of length W_out; the H adjoint yields rows
        # (p, j, h) of length W_out, the W adjoint rows (p, w) of length H.
        adj_h = adjoint_bags(geo.plan_h, geo.kw, geo.chunk_planes, need_r)
        adj_w = adjoint_bags(geo.plan_w, 1, geo.chunk_planes, need_r)

    for n0, n1 in geo.chunks():
        p0, p1 = n0 * geo.channels, n1 * geo.channels
        xt, maps, row_maps, taps = geo.sample(input, n0, n1, need_z=need_w)
        del row_maps
        if need_w:
            grad_w += torch.ops.aten.convolution_backward(
                grad[n0:n1], taps.to(gemm_dtype), weight_g, None,
                [geo.kh, geo.kw], [0, 0], [1, 1], False, [0, 0], 1,
                [False, True, False])[1]
            del taps
        if not (need_x or need_r):
            continue
        gxt, rho = _backward_sampling(geo, wmat_t, grad[n0:n1],
                                      adj_h.planes(p0,
                                                   p1), adj_w.planes(p0, p1),
                                      xt, maps, need_x, need_r)
        if need_x:
            grad_x[n0:n1].copy_(
                gxt.reshape(n1 - n0, geo.channels, geo.width,
                            geo.height).transpose(2, 3))
        if need_r:
            grad_rho[p0:p1] = rho

    if need_r:
        grad_r = grad_rho.view(geo.num, geo.groups, geo.channels //
                               geo.groups).sum(2).to(rates.dtype)
    return grad_x, grad_w, grad_r


def _backward_sampling(
        geo: _Geometry, wmat_t: Tensor, grad: Tensor, adj_h: Bags, adj_w: Bags,
        xt: Tensor, maps: Tensor, need_x: bool,
        need_r: bool) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Input and rate gradients of the planes of one chunk of samples.

    The rate gradient of each plane is ``d_h * <Yd, T> + d_w * <Yw, X>``,
    where ``T`` are the W-pass row maps, ``Yd``/``Yw`` the rho terms of the
    two adjoint passes (the interpolant's derivative along H resp. W,
    weighted by the tap offsets) and ``X`` the input; the caller sums it over
    the channels of each dilation group.

    Args:
        geo (_Geometry): The call's geometry.
        wmat_t (Tensor): Transposed flattened weight, ``(C_in * kh * kw,
            C_out)``, in the GEMM dtype.
        grad (Tensor): Output gradient of the chunk, ``(n, C_out, Ho, Wo)``.
        adj_h (Bags): H adjoint bags of the chunk's planes (with the rho
            term interleaved iff ``need_r``).
        adj_w (Bags): W adjoint bags, likewise.
        xt (Tensor): Source buffer of the W pass (transposed input).
        maps (Tensor): W-pass output, rows ``(p, wo, j)`` of length H.
        need_x (bool): Compute the input gradient.
        need_r (bool): Compute the rate gradient.

    Returns:
        tuple[Tensor | None, Tensor | None]: The transposed input gradient
        ``(P, W, H)`` and the gradient w.r.t. each plane's rate.
    """
    num = grad.shape[0]
    planes = num * geo.channels
    terms = 2 if need_r else 1  # value (and rho term) per adjoint row
    col_grad = geo.buffer('col_grad', num * geo.num_cols * geo.out_h + 1,
                          geo.out_w)
    target = init_source_buffer(col_grad).view(num, geo.num_cols, geo.length)
    wmat_b = wmat_t.expand(num, -1, -1)
    grad = grad.reshape(num, geo.out_channels, geo.length)
    if wmat_t.dtype == target.dtype:
        torch.bmm(wmat_b, grad, out=target)
    else:  # autocast: GEMM in the low precision, sampling in float32
        target.copy_(torch.bmm(wmat_b, grad))
    # H pass adjoint: gradient of the row maps (and Yd), rows (p, j, h) of
    # length W_out; the gradient is transposed to the W pass's output layout
    # (p, j, wo, h).
    z = gather(
        col_grad, adj_h,
        geo.buffer('z', planes * geo.kw * geo.height * terms,
                   geo.out_w)).view(planes, geo.kw, geo.height, terms,
                                    geo.out_w)
    zt = geo.buffer('zt', planes * geo.kw * geo.out_w + 1, geo.height)
    init_source_buffer(zt).view(planes, geo.kw, geo.out_w,
                                geo.height).copy_(z[:, :, :,
                                                    0].transpose(2, 3))
    rate = None
    if need_r:
        # <Yd, T> with T = maps, both taken in (p, j, wo, h) order
        prod = geo.buffer('prod', planes, geo.kw, geo.out_w, geo.height)
        prod.copy_(z[:, :, :, 1].transpose(2, 3))
        prod.mul_(
            maps.view(planes, geo.out_w, geo.kw, geo.height).transpose(1, 2))
        rate = geo.dilation[0] * prod.view(planes, -1).sum(1)
    # W pass adjoint (and Yw): rows (p, w) of length H
    gxt = gather(zt, adj_w,
                 geo.buffer('gxt', planes * geo.width * terms,
                            geo.height)).view(planes, geo.width, terms,
                                              geo.height)
    if need_r:
        yw = gxt[:, :, 1]
        rate += geo.dilation[1] * (
            yw * xt[1:].view(planes, geo.width, geo.height)).sum((1, 2))
    return gxt[:, :, 0] if need_x else None, rate
