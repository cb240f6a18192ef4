# Copyright (c) mmadc contributors. All rights reserved.
"""Memory layout helper shared by the ADC implementations."""
import torch
from torch import Tensor


def memory_format(tensor: Tensor) -> torch.memory_format:
    """channels_last for NHWC-strided tensors, contiguous otherwise.

    ADC returns its output (and input gradient) in the layout of its input,
    like ``F.conv2d``.
    """
    if not tensor.is_contiguous() and tensor.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
