# Copyright (c) mmadc contributors. All rights reserved.
"""Models of mmadc; importing this registers them.

- ``layers``: the comparison conv layers ``'DC'`` and ``'SAC'`` (MMEngine's
  root MODELS registry).
- ``backbones``: ``ResNetADC`` and ``HRNetADC`` (mmpose's MODELS registry),
  ``ResNetADC`` (class ``SegResNetADC``) and ``ResNetV1cADC`` (mmseg's
  MODELS registry) and the block mechanism that swaps a residual block's
  3x3 conv.
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
    name for name in _BACKBONES
    if name not in backbones.MISSING_TASK_BACKBONES
]
