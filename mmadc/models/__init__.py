# Copyright (c) mmadc contributors. All rights reserved.
"""ADC in OpenMMLab models: layers, blocks, backbones; importing registers.

The operator layer (:mod:`mmadc.ops`) needs nothing but torch; this package
is where ADC meets the OpenMMLab codebases. It registers ADC and the
paper's comparison layers as conv layers, so that a layer config names
them, and puts them into mmpose's and mmseg's residual blocks, so that a
config asks for ``ResNetADC`` or ``HRNetADC`` in its own default scope. The
helpers that find and name a model's ADC layers live here too, so that
hooks, metrics and analysis tools all address the layers alike.
"""
# First: stops with the fix where mmcv's compiled ops are missing, before
# mmpose/mmseg fail on them with less helpful messages.
from ..compat import compiled_ops  # noqa: F401
from . import backbones  # noqa: F401  registers ResNetADC, HRNetADC, ...
from . import layers  # noqa: F401  registers 'DC', 'ScaleAdaptiveConv2d'
from .layers import DeformableConv2d, ScaleAdaptiveConv2d  # noqa: F401

_BACKBONES = ('HRNetADC', 'ResNetADC', 'ResNetV1cADC', 'SegResNetADC')


def __getattr__(name: str):
    """The backbones, from :mod:`.backbones` (which names what to install
    when the task's codebase is missing)."""
    if name in _BACKBONES:
        return getattr(backbones, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['DeformableConv2d', 'ScaleAdaptiveConv2d'] + [
    name for name in _BACKBONES if name not in backbones.MISSING_TASK_BACKBONES
]
