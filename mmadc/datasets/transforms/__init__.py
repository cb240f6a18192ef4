# Copyright (c) mmadc contributors. All rights reserved.
from .scale_resolution import ScaleResolution

__all__ = ['ScaleResolution']
