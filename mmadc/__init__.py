# Copyright (c) mmadc contributors. All rights reserved.
"""mmadc: Adaptive Dilated Convolution for MMPose and MMSegmentation.

Importing mmadc (directly or through ``custom_imports``) checks the
OpenMMLab versions, lets ``--resume`` read OpenMMLab checkpoints under
torch's weights-only loading, and registers the ADC conv layer and the
ADC backbones in the MMEngine registries.
"""
from .utils.version_check import check_versions
from .version import __version__, version_info

check_versions()

from .utils.checkpoint_globals import allow_checkpoint_globals  # noqa: E402

allow_checkpoint_globals()

from . import ops  # noqa: E402,F401  registers the 'ADC' conv layer
from . import models  # noqa: E402,F401  registers the ADC backbones
from . import engine  # noqa: E402,F401  registers ADCRateLoggerHook

__all__ = ['__version__', 'version_info']
