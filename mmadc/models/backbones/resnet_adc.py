# Copyright (c) mmadc contributors. All rights reserved.
"""mmpose's ResNet with ADC (or DC / SAC) in its residual blocks."""
import copy
from typing import Optional, Sequence, Type

from mmpose.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmpose.registry import MODELS

from .adc_blocks import (ADCBackboneMixin, ADCBlockMixin, check_adc_stages,
                         resolve_layer_cfg)


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


def adc_block_for(block: Type) -> Type:
    """The ADC version of an mmpose residual block class.

    Args:
        block (type): mmpose's ``BasicBlock`` or ``Bottleneck`` (or a
            subclass; an :class:`ADCBlockMixin` class is returned as is).

    Returns:
        type: :class:`ADCBasicBlock` or :class:`ADCBottleneck`.
    """
    if issubclass(block, ADCBlockMixin):
        return block
    if issubclass(block, Bottleneck):
        return ADCBottleneck
    if issubclass(block, BasicBlock):
        return ADCBasicBlock
    raise TypeError(f'no ADC version of block {block.__name__}; subclass it '
                    'with ADCBlockMixin first')


@MODELS.register_module()
class ResNetADC(ADCBackboneMixin, ResNet):
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

    def __init__(self,
                 depth: int,
                 adc_cfg: Optional[dict] = dict(type='ADC'),
                 adc_stages: Sequence[bool] = (True, True, True, True),
                 **kwargs) -> None:
        num_stages = kwargs.get('num_stages', 4)
        adc_stages = check_adc_stages(adc_stages, num_stages)
        if adc_cfg is not None:
            resolve_layer_cfg(adc_cfg)  # fail early, naming adc_cfg
        # Read by make_res_layer, which ResNet.__init__ calls once per stage
        # in order (plain attributes may be set before Module.__init__).
        self._adc_pending = [
            copy.deepcopy(adc_cfg) if use else None for use in adc_stages
        ]
        super().__init__(depth, **kwargs)
        del self._adc_pending
        self.adc_cfg = copy.deepcopy(adc_cfg)
        self.adc_stages = adc_stages

    def make_res_layer(self, **kwargs):
        """Make a ResLayer whose blocks build their 3x3 conv from the
        stage's layer config."""
        stage_cfg = self._adc_pending.pop(0)
        if stage_cfg is not None:
            # ResLayer forwards unknown keywords to every block.
            kwargs['block'] = adc_block_for(kwargs['block'])
            kwargs['adc_cfg'] = stage_cfg
        return super().make_res_layer(**kwargs)
