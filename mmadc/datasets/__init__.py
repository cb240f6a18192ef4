# Copyright (c) mmadc contributors. All rights reserved.
"""Data transforms of mmadc, registered in MMEngine's root ``TRANSFORMS``
registry (as mmcv's), so that any codebase's pipeline can name them."""
from .transforms import ScaleResolution

__all__ = ['ScaleResolution']
