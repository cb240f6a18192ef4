# Copyright (c) mmadc contributors. All rights reserved.
"""ADC backbones for mmpose and mmseg and the block mechanism they share."""
from .adc_blocks import (ADCBackboneMixin, ADCBlockMixin, ADCResNetMixin,
                         adc_block_class, iter_replaced_convs, replace_conv,
                         resolve_layer_cfg)
from .hrnet_adc import HRNetADC
from .resnet_adc import ADCBasicBlock, ADCBottleneck, ResNetADC
from .resnet_adc_seg import (ResNetV1cADC, SegADCBasicBlock, SegADCBottleneck,
                             SegResNetADC)

__all__ = [
    'ADCBackboneMixin', 'ADCBlockMixin', 'ADCResNetMixin', 'ADCBasicBlock',
    'ADCBottleneck', 'adc_block_class',
    'HRNetADC', 'ResNetADC', 'ResNetV1cADC', 'SegADCBasicBlock',
    'SegADCBottleneck', 'SegResNetADC', 'iter_replaced_convs', 'replace_conv',
    'resolve_layer_cfg'
]
