# Copyright (c) mmadc contributors. All rights reserved.
"""ADC backbones for mmpose and mmseg and the block mechanism they share.

Each task's backbones load only where its codebase is installed, so a pose
user needs no mmsegmentation and a segmentation user no mmpose (or mmdet);
asking for the other task's backbone names what to install.
"""
from ...utils.version_check import package_available
from .adc_blocks import (ADCBackboneMixin, ADCBlockMixin, ADCResNetMixin,
                         adc_block_class, iter_replaced_convs, replace_conv,
                         resolve_layer_cfg)

__all__ = [
    'ADCBackboneMixin', 'ADCBlockMixin', 'ADCResNetMixin', 'adc_block_class',
    'iter_replaced_convs', 'replace_conv', 'resolve_layer_cfg'
]

#: Backbone names of a task whose codebase is missing -> its pip package.
MISSING_TASK_BACKBONES = {}

if package_available('mmpose'):
    from .hrnet_adc import HRNetADC
    from .resnet_adc import ADCBasicBlock, ADCBottleneck, ResNetADC
    __all__ += ['ADCBasicBlock', 'ADCBottleneck', 'HRNetADC', 'ResNetADC']
else:
    MISSING_TASK_BACKBONES.update(
        dict.fromkeys(
            ('HRNetADC', 'ResNetADC', 'ADCBasicBlock', 'ADCBottleneck'),
            'mmpose'))
if package_available('mmseg'):
    from .resnet_adc_seg import (ResNetV1cADC, SegADCBasicBlock,
                                 SegADCBottleneck, SegResNetADC)
    __all__ += [
        'ResNetV1cADC', 'SegADCBasicBlock', 'SegADCBottleneck', 'SegResNetADC'
    ]
else:
    MISSING_TASK_BACKBONES.update(
        dict.fromkeys(('ResNetV1cADC', 'SegADCBasicBlock', 'SegADCBottleneck',
                       'SegResNetADC'), 'mmsegmentation'))


def missing_backbone_error(name: str) -> ImportError:
    """The error for a backbone whose task's codebase is not installed."""
    package = MISSING_TASK_BACKBONES[name]
    task = 'pose estimation' if package == 'mmpose' else 'segmentation'
    return ImportError(
        f'{name} is a {task} backbone and needs {package}, which is not '
        f'installed: run tools/install/setup_env.sh, or `mim install '
        f'{package}` (see README, "Installation")')


def __getattr__(name: str):
    if name in MISSING_TASK_BACKBONES:
        raise missing_backbone_error(name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
