# Copyright (c) mmadc contributors. All rights reserved.
"""mmpose's HRNet with ADC (or DC / SAC) in its residual blocks."""
import copy
from typing import Optional, Sequence

import torch.nn as nn
from mmpose.models.backbones.hrnet import HRNet
from mmpose.registry import MODELS

from .adc_blocks import (ADCBackboneMixin, ADCBlockMixin, check_adc_stages,
                         resolve_layer_cfg)
from .resnet_adc import adc_block_for


@MODELS.register_module()
class HRNetADC(ADCBackboneMixin, HRNet):
    """mmpose's HRNet with the 3x3 conv (``conv2``) of its residual blocks
    built from ``adc_cfg`` (ADC by default): the Bottlenecks of stage 1
    (``layer1``) and the BasicBlocks of the branches of stages 2-4. The
    stems, transitions and fuse layers are untouched.

    All state-dict keys of the shared weights are mmpose's HRNet's, so the
    HRNet ImageNet checkpoints load everything but the rate regressors,
    which keep their identity start (see
    :class:`~mmadc.models.backbones.adc_blocks.ADCBackboneMixin`).

    Args:
        extra (dict): HRNet's architecture (``stage1`` .. ``stage4``), as
            for mmpose's ``HRNet``.
        adc_cfg (dict, optional): Layer config of the replacement conv, e.g.
            ``dict(type='ADC')``, ``dict(type='DC')`` or ``dict(type='SAC')``.
            None keeps the plain conv. Defaults to ``dict(type='ADC')``.
        adc_stages (Sequence[bool]): Whether each of the four stages uses
            it. Defaults to all four.
        **kwargs: Any other argument of mmpose's ``HRNet``.
    """

    def __init__(self,
                 extra: dict,
                 adc_cfg: Optional[dict] = dict(type='ADC'),
                 adc_stages: Sequence[bool] = (True, True, True, True),
                 **kwargs) -> None:
        adc_stages = check_adc_stages(adc_stages, 4)
        if adc_cfg is not None:
            resolve_layer_cfg(adc_cfg)  # fail early, naming adc_cfg
        # HRNet.__init__ calls _make_layer once (stage 1), then _make_stage
        # for stages 2, 3 and 4, in this order.
        self._adc_pending = [
            copy.deepcopy(adc_cfg) if use else None for use in adc_stages
        ]
        super().__init__(extra, **kwargs)
        del self._adc_pending
        self.adc_cfg = copy.deepcopy(adc_cfg)
        self.adc_stages = adc_stages

    def _make_layer(self, block, *args, **kwargs):
        """Make stage 1 from ADC blocks built with the stage's config."""
        stage_cfg = self._adc_pending.pop(0)
        if stage_cfg is None:
            return super()._make_layer(block, *args, **kwargs)
        layer = super()._make_layer(adc_block_for(block), *args, **kwargs)
        return _apply_adc_cfg(layer, stage_cfg)

    def _make_stage(self, layer_config, *args, **kwargs):
        """Make a multi-branch stage from ADC blocks built with its
        config."""
        stage_cfg = self._adc_pending.pop(0)
        if stage_cfg is None:
            return super()._make_stage(layer_config, *args, **kwargs)
        # HRNet picks the block class from self.blocks_dict; shadow the
        # class-level table on the instance for this one stage.
        self.blocks_dict = {
            name: adc_block_for(block)
            for name, block in type(self).blocks_dict.items()
        }
        try:
            stage, out_channels = super()._make_stage(layer_config, *args,
                                                      **kwargs)
        finally:
            del self.blocks_dict
        return _apply_adc_cfg(stage, stage_cfg), out_channels


def _apply_adc_cfg(module: nn.Module, adc_cfg: dict) -> nn.Module:
    """Replace the conv of every ADC block in ``module`` (HRNet builds its
    blocks with a fixed argument list, so the config comes afterwards)."""
    for block in module.modules():
        if isinstance(block, ADCBlockMixin):
            block.apply_adc_cfg(adc_cfg)
    return module
