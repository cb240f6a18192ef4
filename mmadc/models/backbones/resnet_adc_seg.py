# Copyright (c) mmadc contributors. All rights reserved.
"""mmseg's (dilated) ResNet with ADC (or DC / SAC) in its residual blocks.

Registered in **mmseg's** MODELS registry as ``'ResNetADC'`` (and
``'ResNetV1cADC'``), next to mmpose's ``'ResNetADC'`` in mmpose's registry:
a config's default scope (``mmseg`` or ``mmpose``) picks the class, so both
tasks use the one name ``ResNetADC``. The Python class is
:class:`SegResNetADC` to keep the two apart in code.
"""
from typing import Tuple

from mmseg.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmseg.registry import MODELS

from .adc_blocks import ADCBlockMixin, ADCResNetMixin


class SegADCBasicBlock(ADCBlockMixin, BasicBlock):
    """mmseg's BasicBlock whose second 3x3 conv (``conv2``) is built from
    ``adc_cfg``.

    The same choice as for mmpose's BasicBlock (see
    :class:`~mmadc.models.backbones.resnet_adc.ADCBasicBlock`). In mmseg's
    BasicBlock ``conv2`` is never dilated (the stage's dilation sits in
    ``conv1``), so the ADC layer keeps base dilation 1 there. With
    ``adc_cfg=None`` it is exactly ``BasicBlock``.
    """


class SegADCBottleneck(ADCBlockMixin, Bottleneck):
    """mmseg's Bottleneck whose 3x3 conv (``conv2``, which carries the
    stage's dilation, e.g. 2 or 4 in the d8 models) is built from
    ``adc_cfg``; the ADC layer keeps that dilation as its base dilation.
    With ``adc_cfg=None`` it is exactly ``Bottleneck``."""


#: mmseg's block classes and their ADC versions.
SEG_ADC_BLOCKS = {Bottleneck: SegADCBottleneck, BasicBlock: SegADCBasicBlock}


@MODELS.register_module(name='ResNetADC')
class SegResNetADC(ADCResNetMixin, ResNet):
    """mmseg's ResNet with the 3x3 conv of each residual block built from
    ``adc_cfg`` (ADC by default); ``'ResNetADC'`` in mmseg's registry.

    Every other option is mmseg's :class:`~mmseg.models.ResNet`'s: deep
    stem (``deep_stem=True``: ResNetV1c, the d8 models' backbone),
    ``strides``/``dilations`` (e.g. ``(1, 2, 1, 1)``/``(1, 1, 2, 4)``),
    ``contract_dilation``, ``multi_grid``, ``norm_eval``, ``with_cp``,
    ``pretrained``/``init_cfg``. ADC keeps the dilation ``d`` that mmseg
    gives the replaced conv (effective rate ``d`` x adaptive rate), so at
    initialisation (rates 1) the backbone equals mmseg's ResNet with the
    same weights. All state-dict keys of the shared weights are mmseg's: a
    V1c checkpoint (``pretrained='open-mmlab://resnet50_v1c'``) loads
    everything but the rate regressors (``...conv2.rate_regressor.*``),
    which keep their identity start (see
    :class:`~mmadc.models.backbones.adc_blocks.ADCBackboneMixin`).

    Args:
        depth (int): Network depth, from {18, 34, 50, 101, 152}.
        adc_cfg (dict, optional): Layer config of the replacement conv, e.g.
            ``dict(type='ADC')`` (one rate per input channel, the paper's
            default), ``dict(type='ADC', dilation_groups=4)``,
            ``dict(type='DC')`` or ``dict(type='SAC')``. None keeps the
            plain conv. Defaults to ``dict(type='ADC')``.
        adc_stages (Sequence[bool]): Whether each stage uses it; one entry
            per stage (``num_stages``). Defaults to all four.
        **kwargs: Any other argument of mmseg's ``ResNet``.

    Example:
        >>> from mmengine.registry import DefaultScope
        >>> from mmseg.registry import MODELS
        >>> with DefaultScope.overwrite_default_scope('mmseg'):
        ...     model = MODELS.build(dict(
        ...         type='ResNetADC', depth=50, deep_stem=True,
        ...         strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
        ...         contract_dilation=True))
    """

    ADC_BLOCKS = SEG_ADC_BLOCKS

    def check_adc_kwargs(self, adc_stages: Tuple[bool, ...],
                         kwargs: dict) -> None:
        """mmseg builds conv2 of a DCN stage from ``dcn``; replacing it would
        silently drop the DCN."""
        stage_with_dcn = kwargs.get('stage_with_dcn',
                                    (False, ) * len(adc_stages))
        if kwargs.get('dcn') is not None and any(
                a and d for a, d in zip(adc_stages, stage_with_dcn)):
            raise ValueError(
                'adc_stages and stage_with_dcn both select a stage: its 3x3 '
                'conv can be ADC or DCN, not both (got '
                f'adc_stages={adc_stages}, '
                f'stage_with_dcn={tuple(stage_with_dcn)})')


@MODELS.register_module()
class ResNetV1cADC(SegResNetADC):
    """:class:`SegResNetADC` with mmseg's ResNetV1c stem: ``deep_stem=True,
    avg_down=False`` (three 3x3 convs instead of the 7x7 conv), the backbone
    of mmseg's d8 models. ``dict(type='ResNetV1cADC', ...)`` equals
    ``dict(type='ResNetADC', deep_stem=True, avg_down=False, ...)``.

    Args:
        depth (int): Network depth, from {18, 34, 50, 101, 152}.
        **kwargs: Any other argument of :class:`SegResNetADC` but
            ``deep_stem`` and ``avg_down``.
    """

    def __init__(self, depth: int, **kwargs) -> None:
        super().__init__(depth, deep_stem=True, avg_down=False, **kwargs)
