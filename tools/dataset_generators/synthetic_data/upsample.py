# Copyright (c) mmadc contributors. All rights reserved.
"""Bilinear upsampling of coarse noise to an image size, defined exactly.

OpenCV's ``resize`` of float32 arrays (linear and cubic) gives other
values in 4.11 (the last release for numpy 1) than in 4.12 and later. This
one interpolates with float64 element-wise arithmetic, which IEEE 754
defines exactly on every numpy, at OpenCV's pixel centres (``(i + 0.5) *
scale - 0.5``, clamped at the borders).
"""
from typing import Tuple

import numpy as np


def _taps(n_src: int, n_dst: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source indices and the weight of the second for each
    destination index along one axis."""
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * (n_src / n_dst) - 0.5
    pos = np.clip(pos, 0, n_src - 1)
    first = np.floor(pos).astype(np.int64)
    second = np.minimum(first + 1, n_src - 1)
    return first, second, pos - first


def upsample_linear(array: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``(H, W, C)`` array to ``size`` (width, height).

    Args:
        array (np.ndarray): The coarse array, ``(H, W, C)``.
        size (tuple[int, int]): ``(width, height)`` of the result.

    Returns:
        np.ndarray: ``(height, width, C)`` float32.
    """
    width, height = size
    src = np.asarray(array, np.float64)
    y0, y1, fy = _taps(src.shape[0], height)
    x0, x1, fx = _taps(src.shape[1], width)
    fy, fx = fy[:, None, None], fx[None, :, None]
    rows = src[y0] * (1 - fy) + src[y1] * fy
    return (rows[:, x0] * (1 - fx) + rows[:, x1] * fx).astype(np.float32)
