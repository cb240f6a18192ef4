# Copyright (c) mmadc contributors. All rights reserved.
"""Models of mmadc; importing this registers them.

- ``layers``: the comparison conv layers ``'DC'`` and ``'SAC'`` (MMEngine's
  root MODELS registry).
- ``backbones``: ``ResNetADC`` and ``HRNetADC`` (mmpose's MODELS registry)
  and the block mechanism that swaps a residual block's 3x3 conv.
"""
from . import backbones  # noqa: F401  registers ResNetADC, HRNetADC
from . import layers  # noqa: F401  registers 'DC', 'ScaleAdaptiveConv2d'
from .backbones import HRNetADC, ResNetADC
from .layers import DeformableConv2d, ScaleAdaptiveConv2d

__all__ = ['DeformableConv2d', 'HRNetADC', 'ResNetADC', 'ScaleAdaptiveConv2d']
