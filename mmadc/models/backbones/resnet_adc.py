# Copyright (c) mmadc contributors. All rights reserved.
"""mmpose's ResNet with ADC (or DC / SAC) in its residual blocks."""
from typing import Type

from mmpose.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmpose.registry import MODELS

from .adc_blocks import ADCBlockMixin, ADCResNetMixin, adc_block_class


class ADCBasicBlock(ADCBlockMixin, BasicBlock):
    """mmpose's BasicBlock whose second 3x3 conv (``conv2``) is built from
    ``adc_cfg``.

    ``conv2`` rather than ``conv1``: it is the block's last spatial conv
    before the residual sum, like the Bottleneck's ``conv2`` is the last
    spatial conv (Fig. 4 of the paper), and it always runs at stride 1 on
    the block's output grid, so its rates measure context in the same
    pixels in every block (``conv1`` carries the stride of a stage's first
    block, where an adaptive dilation would mix with the sub-sampling). With
    ``adc_cfg=None`` it is exactly ``BasicBlock``.
    """


class ADCBottleneck(ADCBlockMixin, Bottleneck):
    """mmpose's Bottleneck whose 3x3 conv (``conv2``) is built from
    ``adc_cfg`` (Fig. 4 of the paper). With ``adc_cfg=None`` it is exactly
    ``Bottleneck``."""


#: mmpose's block classes and their ADC versions.
ADC_BLOCKS = {Bottleneck: ADCBottleneck, BasicBlock: ADCBasicBlock}


def adc_block_for(block: Type) -> Type:
    """The ADC version of an mmpose residual block class (see
    :func:`~mmadc.models.backbones.adc_blocks.adc_block_class`)."""
    return adc_block_class(block, ADC_BLOCKS)


@MODELS.register_module()
class ResNetADC(ADCResNetMixin, ResNet):
    """mmpose's ResNet with the 3x3 conv of each residual block built from
    ``adc_cfg`` (ADC by default).

    Every other option is mmpose's :class:`~mmpose.models.ResNet`'s, and so
    are all state-dict keys of the shared weights: an ImageNet checkpoint
    (``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``)
    loads everything but the rate regressors (``...conv2.rate_regressor.*``;
    DC: ``conv_offset.*``, SAC: ``conv_scale.*``), which keep their identity
    start: see :class:`~mmadc.models.backbones.adc_blocks.ADCBackboneMixin`.

    Args:
        depth (int): Network depth, from {18, 34, 50, 101, 152}.
        adc_cfg (dict, optional): Layer config of the replacement conv, e.g.
            ``dict(type='ADC')`` (one rate per input channel, the paper's
            default), ``dict(type='ADC', dilation_groups=4)``,
            ``dict(type='DC')`` or ``dict(type='SAC')``. None keeps the
            plain conv. Defaults to ``dict(type='ADC')``.
        adc_stages (Sequence[bool]): Whether each stage uses it; one entry
            per stage (``num_stages``). Defaults to all four.
        **kwargs: Any other argument of mmpose's ``ResNet``.
    """

    ADC_BLOCKS = ADC_BLOCKS
