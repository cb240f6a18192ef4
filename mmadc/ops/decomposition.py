# Copyright (c) mmadc contributors. All rights reserved.
"""ADC in standard operators: ``grid_sample`` and a matrix product.

Deployment runtimes (onnxruntime, TensorRT) know no ``mmadc`` operator, so an
exported program replaces each call by this decomposition
(:data:`DECOMPOSITIONS`, for ``ExportedProgram.run_decompositions``), which
ONNX expresses with ``GridSample`` and ``MatMul``. It computes the same
function as the kernels: every tap of every (sample, channel) plane is one
bilinear read with zeros outside the image (``grid_sample`` with
``align_corners=False`` maps the normalised coordinate back to exactly the
pixel position), and the taps meet the weight in one batched product. It
materialises the ``k * k`` tap image, so it is for deployment and testing,
not for training.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .adaptive_dilated_conv import output_size  # (and registers the op)


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
    out_h, out_w = output_size(input, weight, stride, padding, dilation)
    sample_dtype = torch.float64 if input.dtype == torch.float64 \
        else torch.float32
    planes = input.to(sample_dtype).reshape(num * channels, 1, height, width)
    # (N * C, 1, 1): each plane's rate times the base dilation per axis
    plane_rates = rates.to(sample_dtype).repeat_interleave(
        channels // rates.shape[1], dim=1).reshape(-1, 1, 1)
    like = dict(dtype=sample_dtype, device=input.device)
    taps_h = torch.arange(kh, **like) - kh // 2
    taps_w = torch.arange(kw, **like) - kw // 2
    # kernel centres of the outputs, then the tap shifts (d * r * i)
    centre_y = (
        torch.arange(out_h, **like) * stride[0] - padding[0] + dilation[0] *
        (kh // 2))
    centre_x = (
        torch.arange(out_w, **like) * stride[1] - padding[1] + dilation[1] *
        (kw // 2))
    # (N * C, kh, out_h) and (N * C, kw, out_w) pixel positions
    pos_y = centre_y + (dilation[0] * plane_rates) * taps_h[:, None]
    pos_x = centre_x + (dilation[1] * plane_rates) * taps_w[:, None]
    # grid (N * C, kh * out_h, kw * out_w, 2): rows (i, ho), columns (j, wo)
    rows = kh * out_h
    cols = kw * out_w
    grid_y = pos_y.reshape(-1, rows, 1).expand(-1, rows, cols)
    grid_x = pos_x.reshape(-1, 1, cols).expand(-1, rows, cols)
    # align_corners=False: pixel p has the normalised coordinate
    # (2 p + 1) / size - 1, defined for every size (also 1)
    grid = torch.stack([(2 * grid_x + 1) / width - 1,
                        (2 * grid_y + 1) / height - 1], -1)
    taps = F.grid_sample(
        planes,
        grid,
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)
    # (N, C, kh, out_h, kw, out_w) -> columns (N, C * kh * kw, out_h * out_w)
    columns = taps.reshape(num, channels, kh, out_h, kw,
                           out_w).permute(0, 1, 2, 4, 3,
                                          5).reshape(num, channels * kh * kw,
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
