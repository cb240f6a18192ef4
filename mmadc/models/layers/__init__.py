# Copyright (c) mmadc contributors. All rights reserved.
"""The conv layers of mmadc's models, registered on import.

- ``'ADC'`` / ``'AdaptiveDilatedConv2d'``:
  :class:`~mmadc.ops.AdaptiveDilatedConv2d` (defined in the torch-only
  operator layer, registered here).

The comparison layers of the paper's Table III:

- ``'DC'`` / ``'DeformableConv2d'``: :class:`DeformableConv2d`.
- ``'ScaleAdaptiveConv2d'``: :class:`ScaleAdaptiveConv2d`; in ``adc_cfg``
  also ``'SAC'`` (the root registry's ``'SAC'`` is mmcv's switchable atrous
  convolution).
"""
from ...ops import AdaptiveDilatedConv2d
from ...utils.conv_registry import register_conv_layer
from .deform_conv import DeformableConv2d, deform_conv2d
from .sac import ScaleAdaptiveConv2d

register_conv_layer('ADC', AdaptiveDilatedConv2d)
register_conv_layer('AdaptiveDilatedConv2d', AdaptiveDilatedConv2d)

__all__ = ['DeformableConv2d', 'ScaleAdaptiveConv2d', 'deform_conv2d']
