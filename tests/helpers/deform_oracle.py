# Copyright (c) mmadc contributors. All rights reserved.
"""ADC as torchvision's ``deform_conv2d``: the independent oracle of the
operator tests."""
import torch
from torchvision.ops import deform_conv2d


def deform_offsets(rates, kernel_size, out_size, dilation):
    """torchvision offsets equivalent to ADC rates (built independently).

    Tap (i, j) of offset group ``gr`` gets (dy, dx) =
    (d_h * (r - 1) * i, d_w * (r - 1) * j) at every output position; the
    layout is (N, 2 * g * kh * kw, Ho, Wo) with (dy, dx) pairs, group-major,
    then taps row-major.
    """
    num, groups = rates.shape
    kh, kw = kernel_size
    dh, dw = dilation
    offsets = []
    for gr in range(groups):
        for i in range(-(kh // 2), kh // 2 + 1):
            for j in range(-(kw // 2), kw // 2 + 1):
                offsets.append(dh * (rates[:, gr] - 1) * i)
                offsets.append(dw * (rates[:, gr] - 1) * j)
    offset = torch.stack(offsets, dim=1)[:, :, None, None]
    return offset.expand(num, len(offsets), *out_size).contiguous()


def deform_conv_of_rates(x, weight, rates, bias, stride, padding, dilation):
    """deform_conv2d with the offsets of ADC's rates."""
    kh, kw = weight.shape[2:]
    out_size = [(x.shape[2 + a] + 2 * padding[a] - dilation[a] *
                 (k - 1) - 1) // stride[a] + 1 for a, k in enumerate((kh, kw))]
    offset = deform_offsets(rates, (kh, kw), out_size, dilation)
    return deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
