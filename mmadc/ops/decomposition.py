# Copyright (c) mmadc contributors. All rights reserved.
"""ADC in standard operators: separable bilinear reads as matrix products.

Deployment runtimes (onnxruntime, TensorRT) know no ``mmadc`` operator, so an
exported program replaces each call by this decomposition
(:data:`DECOMPOSITIONS`, for ``ExportedProgram.run_decompositions``), which
ONNX expresses with ``MatMul`` and element-wise operators only. It computes
the same function as the kernels (see :mod:`mmadc.ops.dilated_sampling`):
tap ``(i, j)`` of a plane reads the input at ``(y_i, x_j)``, where ``y_i``
depends only on the plane's rate and ``i`` and ``x_j`` only on the rate and
``j``, so the bilinear read is separable. The row interpolation of a plane
is one small matrix ``A_y`` (rows ``(i, ho)``, columns the input rows) with
the bilinear "tent" weights ``max(0, 1 - |y_i - y|)``, the column
interpolation likewise ``A_x``, and the tap image is ``A_y X A_x^T``. A tent
weight is zero for every pixel outside the image, which is exactly the
kernels' zero padding, for any rate. The centre tap's shift is 0 for every
rate, so where the centre sits on the pixel (stride 1 and "same" padding, as
in every stride-1 ADC layer of the paper's models) its reads are the input
itself and need no product. Each block of taps (row taps read by ``A_y`` or
the centre, column taps read by ``A_x`` or the centre) meets its part of the
weight in one batched product, and the blocks' outputs add up, so the tap
images are never concatenated. The axis read second is read once per tap
of the first, so the longer axis goes first (:func:`rows_read_first`):
rows for pose maps (64x48), columns for segmentation maps (64x128).

Of the forms tried in onnxruntime (``tools/analysis/benchmark_deploy.py``;
README, "The operator: eager, ``torch.compile``, ``torch.export``, ONNX",
has the measurements) this one is the fastest: one ``GridSample`` over every
plane with a ``k * k``-times larger grid, then ``MatMul``, was dominated by
``GridSample``'s generic kernel; ``Gather`` reads of rows and columns with
lerp weights need ``Transpose``s and many element-wise nodes, which
onnxruntime runs slowly, even when only the rows are gathered; one product
with the weight over the concatenated tap images spent as long in the
``Concat`` as in the product; ONNX's own ``DeformConv`` (opset 19; the
onnxruntime 1.32 tested runs it on the CPU, TensorRT's parser reads it
since 10.1), with ADC's rates as offsets constant over the image and one
offset group per channel, was slower than this form at every ResNet-50 and
HRNet-W32 layer shape, 3-22x the ``Conv`` (one layer at a time). The
interpolation matrices are small and
onnxruntime's ``MatMul`` is fast. It materialises the tap images, so it is
for deployment and testing, not for training.
"""
from typing import List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .adaptive_dilated_conv import output_size  # (and registers the op)


def _tent(distances: Tensor, shifts: Tensor) -> Tensor:
    """Bilinear weights ``max(0, 1 - |distance + shift|)``.

    ``distances`` holds ``centre - q`` for every kernel centre and pixel
    ``q`` of an axis, ``shifts`` the tap shifts ``d r t``: their sum is
    ``position - q``, so the result has each position's two linear
    interpolation weights at the pixels around it and zeros elsewhere,
    which reads zeros outside the image (the kernels' zero padding). The
    distances do not depend on the rates (constants in the export), and
    adding a shift per (sample, group, tap) to them is cheaper in
    onnxruntime than broadcasting each position against the pixels.
    """
    return F.relu(1 - (distances + shifts).abs())


class _AxisReads(NamedTuple):
    """How one axis (rows or columns) reads its taps."""
    #: the taps whose reads are an interpolation matrix product
    interpolated: List[int]
    #: (N, g, len(interpolated), out_len, in_len), or (..., in_len, out_len)
    #: transposed: the matrices' tent weights (None without interpolated
    #: taps)
    matrices: Optional[Tensor]
    #: whether the centre tap reads the input itself: stride 1, an output of
    #: the input's length and the centre on the pixel (``padding = d (k //
    #: 2)``), for every rate, since the centre tap's shift ``d r 0`` is 0
    centre_is_input: bool
    #: the input's and the output's length along the axis
    in_len: int
    out_len: int


def _axis_reads(group_rates: Tensor, kernel: int, stride: int, padding: int,
                dilation: int, in_len: int, out_len: int, like: dict,
                transposed: bool) -> _AxisReads:
    """The reads of one axis; ``transposed`` gives the matrices as
    (..., in_len, out_len), the layout in which the columns' product takes
    them (built so rather than transposed in the export)."""
    centre_tap = kernel // 2
    centre_is_input = (
        stride == 1 and out_len == in_len and padding == dilation * centre_tap)
    taps = [t for t in range(kernel) if t != centre_tap or not centre_is_input]
    if not taps:  # a kernel of size 1 along this axis
        return _AxisReads(taps, None, centre_is_input, in_len, out_len)
    # kernel centres of the outputs; tap t reads d * r * (t - k // 2) from
    # them
    centres = (
        torch.arange(out_len, **like) * stride - padding +
        dilation * centre_tap)
    shifts = _taps_of(torch.arange(kernel, **like) - centre_tap, 0,
                      taps).reshape(len(taps), 1, 1)
    pixels = torch.arange(in_len, **like)
    distances = centres - pixels[:, None] if transposed else \
        centres[:, None] - pixels
    matrices = _tent(distances, (dilation * group_rates) * shifts)
    return _AxisReads(taps, matrices, centre_is_input, in_len, out_len)


class _TapBlock(NamedTuple):
    """Tap images of some row taps and some column taps."""
    #: (N, g, column taps, C / g, row taps, out_h, out_w), in any shape
    #: with that element order
    taps: Tensor
    row_taps: List[int]
    col_taps: List[int]


def _taps_of(weight: Tensor, dim: int, taps: List[int]) -> Tensor:
    """``weight``'s taps ``taps`` along ``dim``, in that order (slices: no
    ``Gather`` on the weight in the export)."""
    return torch.cat([weight.narrow(dim, t, 1) for t in taps], dim)


def _pass_macs(first: _AxisReads, second: _AxisReads) -> int:
    """Multiply-adds per plane of the interpolation products when the
    ``first`` axis is read first (across the other axis's input), then the
    ``second`` on each of the images that gives: the second pass runs once
    per tap of the first, so the order matters where the axes differ in
    length."""
    images = len(first.interpolated) + first.centre_is_input
    macs = len(first.interpolated) * first.out_len * first.in_len * \
        second.in_len
    return macs + (
        images * len(second.interpolated) * second.out_len * second.in_len *
        first.out_len)


def rows_read_first(rows: _AxisReads, cols: _AxisReads) -> bool:
    """Whether the row interpolation comes first: where it costs no more
    multiply-adds than the columns first (see :func:`_pass_macs`).
    Segmentation crops are wider than high (FCN-R50-D8 at 512x1024 reads
    64x128 maps: columns first saves 29% of the interpolation), pose crops
    higher than wide (rows first)."""
    return _pass_macs(rows, cols) <= _pass_macs(cols, rows)


def adaptive_dilated_conv2d_decomposed(
        input: Tensor,
        weight: Tensor,
        rates: Tensor,
        bias: Optional[Tensor],
        stride: List[int],
        padding: List[int],
        dilation: List[int],
        compute_dtype: torch.dtype,
        rows_first: Optional[bool] = None) -> Tensor:
    """The op ``mmadc::adaptive_dilated_conv2d`` in standard operators.

    Same arguments as the op (see :mod:`mmadc.ops.adaptive_dilated_conv`),
    and ``rows_first``: whether the row interpolation comes before the
    column interpolation (None: the order with fewer multiply-adds, see
    :func:`rows_read_first`; both give the same values).
    """
    num, channels, height, width = input.shape
    out_channels, _, kh, kw = weight.shape
    groups = rates.shape[1]
    group_channels = channels // groups
    out_h, out_w = output_size(input, weight, stride, padding, dilation)
    sample_dtype = torch.float64 if input.dtype == torch.float64 \
        else torch.float32
    like = dict(dtype=sample_dtype, device=input.device)
    # (N, g, 1, 1, 1): every channel of a dilation group shares its
    # positions, so the interpolation matrices are per group and broadcast
    # over its channels
    group_rates = rates.to(sample_dtype).reshape(num, groups, 1, 1, 1)
    rows = _axis_reads(
        group_rates,
        kh,
        stride[0],
        padding[0],
        dilation[0],
        height,
        out_h,
        like,
        transposed=False)
    cols = _axis_reads(
        group_rates,
        kw,
        stride[1],
        padding[1],
        dilation[1],
        width,
        out_w,
        like,
        transposed=True)
    if rows_first is None:
        rows_first = rows_read_first(rows, cols)
    planes = input.to(sample_dtype).reshape(num, groups, group_channels,
                                            height, width)
    blocks = _row_first_blocks(planes, rows, cols, kh, kw) if rows_first \
        else _column_first_blocks(planes, rows, cols, kh, kw)
    # Each (row taps, column taps) block meets its part of the weight in
    # its own product and the blocks' outputs add up: no concatenation of
    # tap images, and no product for a centre tap that is the input.
    weight = weight.reshape(out_channels, groups, group_channels, kh, kw)
    out = None
    for taps, row_taps, col_taps in blocks:
        # the weight's columns in the taps' order (g, j, c, i)
        block_weight = _taps_of(_taps_of(weight, 3, row_taps), 4,
                                col_taps).permute(0, 1, 4, 2, 3)
        term = torch.matmul(
            block_weight.reshape(out_channels, -1).to(compute_dtype),
            taps.reshape(num, -1, out_h * out_w).to(compute_dtype))
        out = term if out is None else out + term
    if bias is not None:
        out = out + bias.to(compute_dtype)[:, None]
    return out.reshape(num, out_channels, out_h, out_w)


def _row_first_blocks(planes: Tensor, rows: _AxisReads, cols: _AxisReads,
                      kh: int, kw: int) -> List[_TapBlock]:
    """The tap blocks of the row interpolation, then the columns of each
    of its images."""
    num, groups, _, height, width = planes.shape
    # Row-read images as (N, g, 1, C / g * taps * out_h, W), with their row
    # taps: A_y (N, g, taps * out_h, H) times the planes, and the planes
    # themselves where they are the centre tap
    images = []
    if rows.interpolated:
        matrices = rows.matrices.reshape(num, groups, 1, -1, height)
        images.append((torch.matmul(matrices,
                                    planes).reshape(num, groups, 1, -1,
                                                    width), rows.interpolated))
    if rows.centre_is_input:
        images.append((planes.reshape(num, groups, 1, -1, width), [kh // 2]))
    # then the columns, A_x^T (N, g, taps, W, out_w), for all row taps at
    # once
    blocks = []
    for image, row_taps in images:
        if cols.interpolated:
            taps = torch.matmul(image, cols.matrices)
            blocks.append(_TapBlock(taps, row_taps, cols.interpolated))
        if cols.centre_is_input:
            blocks.append(_TapBlock(image, row_taps, [kw // 2]))
    return blocks


def _column_first_blocks(planes: Tensor, rows: _AxisReads, cols: _AxisReads,
                         kh: int, kw: int) -> List[_TapBlock]:
    """As :func:`_row_first_blocks`, the column interpolation first."""
    num, groups, group_channels, height, width = planes.shape
    # Column-read images as (N, g, taps, C / g, H, out_w): the planes times
    # A_x^T (N, g, taps, W, out_w), and the planes themselves where they
    # are the centre tap
    images = []
    if cols.interpolated:
        image = torch.matmul(
            planes.reshape(num, groups, 1, -1, width), cols.matrices)
        images.append(
            (image.reshape(num, groups, len(cols.interpolated), group_channels,
                           height, -1), cols.interpolated))
    if cols.centre_is_input:
        images.append((planes.unsqueeze(2), [kw // 2]))
    # then the rows, A_y (N, g, 1, 1, taps * out_h, H), for all column taps
    # and channels at once
    blocks = []
    for image, col_taps in images:
        if rows.interpolated:
            matrices = rows.matrices.reshape(num, groups, 1, 1, -1, height)
            taps = torch.matmul(matrices, image)
            blocks.append(_TapBlock(taps, rows.interpolated, col_taps))
        if rows.centre_is_input:
            blocks.append(_TapBlock(image, [kh // 2], col_taps))
    return blocks


#: For ``ExportedProgram.run_decompositions``: the registered op in standard
#: operators.
DECOMPOSITIONS = {}
if hasattr(torch.library, 'custom_op'):  # the op is registered
    DECOMPOSITIONS[torch.ops.mmadc.adaptive_dilated_conv2d.default] = \
        adaptive_dilated_conv2d_decomposed
