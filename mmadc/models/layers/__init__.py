# Copyright (c) mmadc contributors. All rights reserved.
"""Comparison conv layers of the paper's Table III (registered on import).

- ``'DC'`` / ``'DeformableConv2d'``: :class:`DeformableConv2d`.
- ``'ScaleAdaptiveConv2d'``: :class:`ScaleAdaptiveConv2d`; in ``adc_cfg``
  also ``'SAC'`` (the root registry's ``'SAC'`` is mmcv's switchable atrous
  convolution).
"""
from .deform_conv import DeformableConv2d, deform_conv2d
from .sac import ScaleAdaptiveConv2d

__all__ = ['DeformableConv2d', 'ScaleAdaptiveConv2d', 'deform_conv2d']
