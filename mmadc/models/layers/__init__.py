# Copyright (c) mmadc contributors. All rights reserved.
"""The conv layers a layer config can name, registered on import.

ADC itself is defined in the torch-only operator layer and only registered
here; the other layers are the comparison layers of the paper's Table III,
deformable convolution and scale-adaptive convolution. The latter is
registered as ``'ScaleAdaptiveConv2d'`` because MMEngine's root registry
already gives ``'SAC'`` to mmcv's switchable atrous convolution; in
``adc_cfg``, ``'SAC'`` still means the scale-adaptive one.
"""
from ...ops import AdaptiveDilatedConv2d
from ...utils.conv_registry import register_conv_layer
from .deform_conv import DeformableConv2d, deform_conv2d
from .sac import ScaleAdaptiveConv2d

register_conv_layer('ADC', AdaptiveDilatedConv2d)
register_conv_layer('AdaptiveDilatedConv2d', AdaptiveDilatedConv2d)

__all__ = ['DeformableConv2d', 'ScaleAdaptiveConv2d', 'deform_conv2d']
