# Copyright (c) mmadc contributors. All rights reserved.
"""mmadc: Adaptive Dilated Convolution for MMPose and MMSegmentation.

Importing mmadc (directly or through ``custom_imports``) checks the
OpenMMLab versions, lets ``--resume`` read OpenMMLab checkpoints under
torch's weights-only loading, and registers the ADC conv layer and the
ADC backbones in the MMEngine registries.

Without MMEngine installed only the torch-only operator layer
(:mod:`mmadc.ops`) is loaded: ``torch.ops.mmadc.adaptive_dilated_conv2d``
and :class:`mmadc.ops.AdaptiveDilatedConv2d` need nothing but torch.
"""
import importlib.util

from .version import __version__, version_info

if importlib.util.find_spec('mmengine') is not None:
    from .utils.version_check import check_versions

    check_versions()

    from .compat.checkpoint_globals import allow_checkpoint_globals

    allow_checkpoint_globals()

    from . import models  # noqa: F401  registers 'ADC' and the backbones
    from . import datasets  # noqa: F401  registers the transforms
    from . import engine  # noqa: F401  registers the hooks
    from . import evaluation  # noqa: F401  registers the metrics

from . import ops  # noqa: E402,F401  registers the torch.ops.mmadc ops

__all__ = ['__version__', 'version_info']
