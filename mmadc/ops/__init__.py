# Copyright (c) mmadc contributors. All rights reserved.
from .adaptive_dilated_conv import adaptive_dilated_conv2d
from .adc_layer import AdaptiveDilatedConv2d, DilationRateRegressor

__all__ = [
    'adaptive_dilated_conv2d', 'AdaptiveDilatedConv2d', 'DilationRateRegressor'
]
