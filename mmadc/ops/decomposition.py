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
kernels' zero padding, for any rate. The tap image meets the weight in one
batched product.

Of the forms tried in onnxruntime (``tools/analysis/benchmark_deploy.py``;
README, "The operator: eager, ``torch.compile``, ``torch.export``, ONNX",
has the measurements) this one is the fastest: one ``GridSample`` over every
plane with a ``k * k``-times larger grid, then ``MatMul``, was dominated by
``GridSample``'s generic kernel; ``Gather`` reads of rows and columns with
lerp weights need a high-rank ``Transpose`` of the ``k * k`` tap image (the
gathered axis must lead), which onnxruntime runs slowly, even when only the
rows are gathered. The interpolation matrices are small and onnxruntime's
``MatMul`` is fast. It materialises the ``k * k`` tap image, so it is for
deployment and testing, not for training.
"""
from typing import List, Optional

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


def adaptive_dilated_conv2d_decomposed(input: Tensor, weight: Tensor,
                                       rates: Tensor, bias: Optional[Tensor],
                                       stride: List[int], padding: List[int],
                                       dilation: List[int],
                                       compute_dtype: torch.dtype) -> Tensor:
    """The op ``mmadc::adaptive_dilated_conv2d`` in standard operators.

    Same arguments as the op (see :mod:`mmadc.ops.adaptive_dilated_conv`).
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
    taps_h = (torch.arange(kh, **like) - kh // 2).reshape(kh, 1, 1)
    taps_w = (torch.arange(kw, **like) - kw // 2).reshape(kw, 1, 1)
    # kernel centres of the outputs; tap i reads d * r * i from them
    centre_y = (
        torch.arange(out_h, **like) * stride[0] - padding[0] + dilation[0] *
        (kh // 2))
    centre_x = (
        torch.arange(out_w, **like) * stride[1] - padding[1] + dilation[1] *
        (kw // 2))
    # rows first: A_y (N, g, kh, out_h, H) as (N, g, 1, kh * out_h, H),
    # times the planes (N, g, C / g, H, W)
    rows_y = _tent(centre_y[:, None] - torch.arange(height, **like),
                   (dilation[0] * group_rates) * taps_h)
    planes = input.to(sample_dtype).reshape(num, groups, group_channels,
                                            height, width)
    rows = torch.matmul(
        rows_y.reshape(num, groups, 1, kh * out_h, height),
        planes).reshape(num, groups, group_channels, kh, 1, out_h, width)
    # then columns, A_x^T (N, g, kw, W, out_w), one product per tap (i, j),
    # which leaves the taps in the (c, i, j, ho, wo) order of the column
    # matrix (no transpose of the k * k tap image)
    cols_x = _tent(centre_x - torch.arange(width, **like)[:, None],
                   (dilation[1] * group_rates) * taps_w)
    columns = torch.matmul(rows,
                           cols_x.reshape(num, groups, 1, 1, kw, width,
                                          out_w)).reshape(
                                              num, channels * kh * kw,
                                              out_h * out_w)
    out = torch.matmul(
        weight.reshape(out_channels, -1).to(compute_dtype),
        columns.to(compute_dtype))
    if bias is not None:
        out = out + bias.to(compute_dtype)[:, None]
    return out.reshape(num, out_channels, out_h, out_w)


#: For ``ExportedProgram.run_decompositions``: the registered op in standard
#: operators.
DECOMPOSITIONS = {}
if hasattr(torch.library, 'custom_op'):  # the op is registered
    DECOMPOSITIONS[torch.ops.mmadc.adaptive_dilated_conv2d.default] = \
        adaptive_dilated_conv2d_decomposed
