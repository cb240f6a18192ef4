# Copyright (c) mmadc contributors. All rights reserved.
from .adc_layer_lookup import (STAGE_PATTERN, adc_layer_title,
                               describe_adc_layers, describe_layer,
                               find_adc_layers, layer_info, layer_stage,
                               require_adc_layers)
from .adc_rate_collector import ADCRateCollector

__all__ = [
    'ADCRateCollector', 'STAGE_PATTERN', 'adc_layer_title',
    'describe_adc_layers', 'describe_layer', 'find_adc_layers', 'layer_info',
    'layer_stage', 'require_adc_layers'
]
