# Copyright (c) mmadc contributors. All rights reserved.
"""The ADC operator and layer; imports only torch (and the native kernel).

Importing this package registers ``torch.ops.mmadc.adaptive_dilated_conv2d``
(see :mod:`.adaptive_dilated_conv`); the OpenMMLab registrations live in
:mod:`mmadc.models`.
"""
from .adaptive_dilated_conv import adaptive_dilated_conv2d, adc_rate_check
from .adc_layer import AdaptiveDilatedConv2d, DilationRateRegressor
from .implementations import adc_implementation, get_adc_implementation

__all__ = [
    'adaptive_dilated_conv2d', 'adc_implementation', 'adc_rate_check',
    'AdaptiveDilatedConv2d', 'DilationRateRegressor', 'get_adc_implementation'
]
