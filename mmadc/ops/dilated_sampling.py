# Copyright (c) mmadc contributors. All rights reserved.
"""Separable 1-D resampling used by adaptive dilated convolution.

Every kernel tap of an adaptive dilated convolution reads its input plane at a
shift that is constant over all output positions (``rho * i`` along H,
``rho * j`` along W, with one ``rho`` per (sample, channel) plane). The
bilinear read therefore factorises into a 1-D linear interpolation along one
axis followed by one along the other axis, and each 1-D pass is a *row
gather*: output row ``l`` of a plane is a weighted sum of two whole source
rows. Each pass (and each adjoint pass) is one
:func:`torch.nn.functional.embedding_bag` call in ``'sum'`` mode with per
sample weights: a fused "gather rows + weighted add" that runs on CPU and
CUDA without any atomic scatter. The bags (row indices and weights) depend
only on the rates, so they are built once per call for all planes and reused
by every chunk of samples and by the backward.

Conventions:

* A *source buffer* is a 2-D tensor whose row 0 is all zeros, followed by the
  rows of ``P`` planes, each with ``S`` sub-maps of ``in_len`` rows of length
  ``R``: sub-map ``(p, s)`` starts at row ``1 + (p * S + s) * in_len`` (see
  :func:`new_source_buffer`). Reads outside a sub-map point at row 0, which
  implements zero padding of any width without padding the data.
* Tap ``t`` of plane ``p`` reads source rows ``y`` and ``y + 1`` with
  ``y = l * stride + base + floor[p, t]`` and weights ``1 - frac[p, t]`` and
  ``frac[p, t]``, where ``floor``/``frac`` are the integer and fractional
  parts of the tap's shift (:func:`base_row`): the floor-based convention of
  ``torchvision.ops.deform_conv2d``, except at an exact integer position of
  a negative tap, where ``floor`` is one lower and ``frac`` is 1, so that
  the derivative is the one as the rate increases for every tap.
* Bags are built for all planes but address a buffer holding only one chunk
  of ``chunk_planes`` planes (plane ``p`` is local plane
  ``p % chunk_planes``), so the bags of a chunk are a contiguous slice.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


class AxisPlan(NamedTuple):
    """Geometry of one separable resampling pass along one axis.

    Attributes:
        floor (Tensor): Integer part of each tap's shift, shape ``(P, k)``,
            int64.
        frac (Tensor): Weight of the second row, in ``[0, 1]`` (1 only at
            a negative tap's kink, see :func:`base_row`), shape ``(P, k)``, in
            the sampling dtype.
        taps (Tensor): Tap offsets ``-(k // 2) .. k // 2`` in the sampling
            dtype, shape ``(k, )``: the derivative of a tap's shift w.r.t.
            ``dilation * rate``.
        in_len (int): Number of source rows per sub-map (input size along
            the axis).
        out_len (int): Number of output rows per sub-map.
        stride (int): Output stride along the axis.
        base (int): Source row of output row 0 for a zero shift, i.e.
            ``-padding + dilation * (k // 2)``.
    """
    floor: Tensor
    frac: Tensor
    taps: Tensor
    in_len: int
    out_len: int
    stride: int
    base: int


def base_row(shift: Tensor, taps: Tensor) -> Tensor:
    """The first of the two rows a tap interpolates between.

    ``floor(shift)``, except that a negative tap exactly on a row takes
    ``shift - 1`` (weight 1 on the second row): at such a kink the rate
    gradient is then the derivative *as the rate increases* for every tap
    (tap ``i`` moves by ``i`` per unit of ``dilation * rate``, so a positive
    tap needs the interpolant's right derivative and a negative tap its left
    one). Rates start at 1 and are bounded below by 0, so this is the
    direction training moves them. Elsewhere both rules agree.
    """
    return torch.where(taps < 0, torch.ceil(shift) - 1, torch.floor(shift))


def make_axis_plan(rates: Tensor, kernel_size: int, in_len: int, stride: int,
                   padding: int, dilation: int,
                   dtype: torch.dtype) -> AxisPlan:
    """Build the sampling plan of one axis.

    Args:
        rates (Tensor): Dilation rate of each plane, shape ``(P, )``. The
            shift of tap ``i`` is ``dilation * rate * i`` input pixels.
        kernel_size (int): Number of taps along the axis (odd).
        in_len (int): Input size along the axis.
        stride (int): Stride along the axis.
        padding (int): Zero padding along the axis.
        dilation (int): Base dilation along the axis.
        dtype (torch.dtype): Dtype of the interpolation weights.

    Returns:
        AxisPlan: The plan.
    """
    half = kernel_size // 2
    out_len = (in_len + 2 * padding - dilation *
               (kernel_size - 1) - 1) // stride + 1
    taps = torch.arange(-half, half + 1, device=rates.device)
    if rates.dtype == torch.float64 or dilation * half >= 2**12:
        shift = (rates.to(torch.float64) * dilation)[:, None] * taps.to(
            torch.float64)
        floor = base_row(shift, taps)
        frac = (shift - floor).to(dtype)
    else:
        floor, frac = _exact_float32_taps(rates.float(), dilation * taps)
        frac = frac.to(dtype)
    return AxisPlan(
        floor.to(torch.int64), frac, taps.to(dtype), in_len, out_len, stride,
        -padding + dilation * half)


def _two_sum(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """``a + b`` rounded and its rounding error: ``a + b = s + err``
    exactly (Knuth's TwoSum)."""
    total = a + b
    b_virtual = total - a
    return total, (a - (total - b_virtual)) + (b - b_virtual)


def _exact_float32_taps(rates: Tensor,
                        factors: Tensor) -> Tuple[Tensor, Tensor]:
    """:func:`base_row` and the weight of ``rates[:, None] * factors`` for
    float32 rates and small integer factors, without float64 (slow on most
    GPUs) and without rounding the product first (the base row must not
    flip: ``3 * fl(4/3)`` rounds to 4 in float32 but lies below it).

    The rate is split into two halves of 12 significant bits (Veltkamp), so
    that both partial products are exact in float32 for factors below
    ``2**12``; their sum ``total + err`` is then exact (TwoSum), which
    decides the base row; the weight is that sum minus the base row, again
    kept exact until one final rounding, as rounding the float64 product
    would give.
    """
    split = rates * 4097.
    high = split - (split - rates)
    low = rates - high
    factors = factors.to(torch.float32)
    total, err = _two_sum(high[:, None] * factors, low[:, None] * factors)
    floor = torch.floor(total)
    on_integer = total == floor
    # below an integer that the rounded sum reached, or exactly on it for a
    # negative tap (the kink convention of base_row)
    floor = floor - (on_integer & ((err < 0) | ((err == 0) &
                                                (factors < 0)))).float()
    frac, frac_err = _two_sum(total, -floor)
    return floor, frac + (frac_err + err)


class Bags(NamedTuple):
    """Row indices and weights of a gather, ``bags_per_plane`` per plane.

    Attributes:
        index (Tensor): Source rows, shape ``(num_bags, entries)``.
        weights (Tensor): Their weights, same shape.
        bags_per_plane (int): Number of consecutive bags of each plane.
    """
    index: Tensor
    weights: Tensor
    bags_per_plane: int

    def planes(self, start: int, end: int) -> 'Bags':
        """The bags of planes ``start .. end - 1``."""
        rows = slice(start * self.bags_per_plane, end * self.bags_per_plane)
        return self._replace(
            index=self.index[rows], weights=self.weights[rows])


def init_source_buffer(buf: Tensor) -> Tensor:
    """Zero row 0 of a source buffer and return its data rows ``buf[1:]``."""
    buf[0].zero_()
    return buf[1:]


def new_source_buffer(rows: int, row_len: int, dtype: torch.dtype,
                      device: torch.device) -> Tuple[Tensor, Tensor]:
    """Allocate a source buffer: a zero row 0, then ``rows`` data rows.

    Args:
        rows (int): Number of data rows.
        row_len (int): Length of each row.
        dtype (torch.dtype): Dtype.
        device (torch.device): Device.

    Returns:
        tuple[Tensor, Tensor]: The buffer of shape ``(rows + 1, row_len)``
        and a view of its data rows (``buf[1:]``) for the caller to fill.
    """
    buf = torch.empty(rows + 1, row_len, dtype=dtype, device=device)
    return buf, init_source_buffer(buf)


# The out= overload of embedding_bag's forward (CPU) writes into a buffer the
# caller reuses; absent in other builds, gather() then allocates.
_EMBEDDING_BAG_OUT = getattr(
    getattr(torch.ops.aten, '_embedding_bag_forward_only', None), 'out', None)


def gather(src: Tensor, bags: Bags, out: Optional[Tensor] = None) -> Tensor:
    """Weighted sums of gathered rows: ``out[n] = sum_e w[n, e] src[i[n, e]]``.

    ``embedding_bag`` does the gather and the weighted add in one pass with
    one output write.

    Args:
        src (Tensor): Source buffer, shape ``(rows, R)``.
        bags (Bags): The bags.
        out (Tensor, optional): Contiguous tensor of shape
            ``(num_bags, R)`` to write into (used on CPU only).

    Returns:
        Tensor: Shape ``(num_bags, R)``; ``out`` when it was used.
    """
    num_bags, entries = bags.index.shape
    if num_bags == 0:
        return src.new_zeros(0, src.shape[1]) if out is None else out
    if out is None or _EMBEDDING_BAG_OUT is None or not src.is_cpu:
        # (off CPU the caching allocator makes a fresh output cheap)
        return F.embedding_bag(
            bags.index, src, per_sample_weights=bags.weights, mode='sum')
    index = bags.index.reshape(-1)
    offsets = torch.arange(
        0, index.numel(), entries, dtype=index.dtype, device=index.device)
    _EMBEDDING_BAG_OUT(
        src,
        index,
        offsets,
        False,
        0,  # mode 'sum'
        False,
        bags.weights.reshape(-1),
        False,
        -1,
        out0=out,
        out1=index.new_empty(0),
        out2=index.new_empty(0),
        out3=index.new_empty(0))
    return out


def _local_sub_map_offsets(num_planes: int, num_sub: int, in_len: int,
                           chunk_planes: int, dtype: torch.dtype,
                           device: torch.device) -> Tensor:
    """Row of sub-map ``(p, s)`` in its chunk's source buffer, (P, S)."""
    local = torch.arange(num_planes, device=device, dtype=dtype)
    local = local % chunk_planes
    sub = local[:, None] * num_sub + torch.arange(
        num_sub, device=device, dtype=dtype)
    return sub * in_len + 1


def _index_dtype(num_rows: int) -> Tuple[torch.dtype, int]:
    """Index dtype for a buffer of ``num_rows`` rows, and a sentinel.

    int32 halves the index traffic (embedding_bag accepts both). Rows that
    must read the zero row are set to the sentinel before the sub-map offset
    is added; the sum stays negative and is clamped to row 0.
    """
    if num_rows < 2**30:
        return torch.int32, -2**30
    return torch.int64, -2**62


def resample_bags(plan: AxisPlan,
                  num_sub: int,
                  chunk_planes: int,
                  taps_inner: bool = False) -> Bags:
    """Bags interpolating every tap of every plane along the row axis.

    ``out[p, t, s, l] = (1 - frac[p, t]) * src[p, s, y] +
    frac[p, t] * src[p, s, y + 1]`` with
    ``y = l * stride + base + floor[p, t]``; rows outside ``[0, in_len)``
    read the zero row.

    Args:
        plan (AxisPlan): Geometry of the pass.
        num_sub (int): Number of sub-maps ``S`` per plane in the source.
        chunk_planes (int): Planes per chunk (source buffer).
        taps_inner (bool): Order the output rows ``(p, s, l, t)`` instead of
            ``(p, t, s, l)``.

    Returns:
        Bags: ``k * S * out_len`` bags of 2 entries per plane.
    """
    num_planes, k = plan.floor.shape
    device = plan.floor.device
    dtype, outside = _index_dtype(num_sub * plan.in_len * chunk_planes + 1)
    pos = torch.arange(plan.out_len, device=device) * plan.stride + plan.base
    # (P, k, L, 2): the two source rows of each output row, in the sub-map
    rows = (plan.floor[:, :, None] + pos)[..., None] + torch.arange(
        2, device=device)
    rows = rows.masked_fill_((rows < 0) | (rows >= plan.in_len),
                             outside).to(dtype)
    offsets = _local_sub_map_offsets(num_planes, num_sub, plan.in_len,
                                     chunk_planes, dtype, device)
    weights = torch.stack([1 - plan.frac, plan.frac], dim=-1)  # (P, k, 2)
    if taps_inner:  # (P, S, L, k, 2)
        index = offsets[:, :, None, None, None] + rows.transpose(1, 2)[:, None]
        weights = weights[:, None, None].expand(num_planes, num_sub,
                                                plan.out_len, k, 2)
    else:  # (P, k, S, L, 2)
        index = offsets[:, None, :, None, None] + rows[:, :, None]
        weights = weights[:, :, None, None].expand(num_planes, k, num_sub,
                                                   plan.out_len, 2)
    index = index.clamp_(min=0).reshape(-1, 2)
    return Bags(index, weights.reshape(-1, 2), k * num_sub * plan.out_len)


def adjoint_bags(plan: AxisPlan, num_sub: int, chunk_planes: int,
                 rho_term: bool) -> Bags:
    """Bags of the transpose of :func:`resample_bags`, summed over taps.

    For a fixed shift the bilinear read is linear in the source and its
    transpose is again a two-tap read with the negated shift, so the source
    gradient is a gather (no scatter). With ``q = m - base - floor[p, t]``:

    * value: ``v[p, s, m] = sum_t (1 - frac) * g[p, t, s, q / stride] +
      frac * g[p, t, s, (q - 1) / stride]``, where a term is zero unless the
      division is exact and the row lies in ``[0, out_len)`` (this is how a
      stride > 1 is handled: the skipped output rows act as zeros);
    * rho term: the same rows with weights ``taps[t] * (-1, +1)``. Its inner
      product with the source equals
      ``sum_{t,l} g[p,t,s,l] * taps[t] * (src[y + 1] - src[y])``, i.e. the
      gradient of ``<resample(src), g>`` w.r.t. a common scale ``rho`` of
      the tap shifts ``rho * taps[t]`` (derivative of the interpolant).

    The gradient source buffer holds the output of the forward pass in
    ``(p, t, s, l)`` order.

    Args:
        plan (AxisPlan): Geometry of the forward pass.
        num_sub (int): Number of sub-maps ``S`` per plane.
        chunk_planes (int): Planes per chunk (source buffer).
        rho_term (bool): Also compute the rho term. Each value bag is then
            followed by the rho bag of the same rows, so that one gather
            reads each gradient row once for both (the second read hits the
            cache); its output viewed as ``(..., 2, R)`` holds the value at
            index 0 and the rho term at index 1.

    Returns:
        Bags: ``S * in_len`` bags (twice as many with ``rho_term``) of
        ``2 * k`` entries per plane, ordered ``(p, s, m)``.
    """
    num_planes, k = plan.floor.shape
    device = plan.floor.device
    stride = plan.stride
    dtype, outside = _index_dtype(k * num_sub * plan.out_len * chunk_planes +
                                  1)
    src_pos = torch.arange(plan.in_len, device=device) - plan.base
    # (P, M, k, 2): numerator of the output row feeding (m, t, a)
    num = (src_pos[None, :, None] - plan.floor[:, None, :])[..., None] - \
        torch.arange(2, device=device)
    if stride == 1:
        rows = num
        invalid = (rows < 0) | (rows >= plan.out_len)
    else:
        rows = torch.div(num, stride, rounding_mode='floor')
        invalid = (rows * stride != num) | (rows < 0) | (rows >= plan.out_len)
    # Gradient sub-map (p, t, s) starts at row
    # 1 + ((p_local * k + t) * S + s) * out_len: the tap part goes into the
    # (small) rows tensor, so that the full-size sum below broadcasts a
    # per-(p, s) scalar over contiguous runs of in_len * k * 2 entries.
    rows = rows + (torch.arange(k, device=device) *
                   (num_sub * plan.out_len))[:, None]
    rows = rows.masked_fill_(invalid, outside).to(dtype)
    local = torch.arange(num_planes, device=device, dtype=dtype)
    local = local % chunk_planes
    base = (local[:, None] * (k * num_sub) + torch.arange(
        num_sub, device=device, dtype=dtype)) * plan.out_len + 1
    index = base[:, :, None] + rows.view(num_planes, 1, 2 * k * plan.in_len)
    index = index.clamp_(min=0).view(-1, 2 * k)
    shape = (num_planes, num_sub * plan.in_len, 2 * k)
    weights = torch.stack([1 - plan.frac, plan.frac], dim=-1)
    weights = weights.view(num_planes, 1,
                           2 * k).expand(shape).reshape(-1, 2 * k)
    if not rho_term:
        return Bags(index, weights, num_sub * plan.in_len)
    sign = torch.tensor([-1, 1], dtype=plan.taps.dtype, device=device)
    rho_weights = (plan.taps[:, None] * sign).view(1, 2 * k)
    index = index.view(-1, 1, 2 * k).expand(-1, 2, 2 * k).reshape(-1, 2 * k)
    weights = torch.stack([weights, rho_weights.expand_as(weights)],
                          dim=1).view(-1, 2 * k)
    return Bags(index, weights, 2 * num_sub * plan.in_len)
