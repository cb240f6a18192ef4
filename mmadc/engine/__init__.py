# Copyright (c) mmadc contributors. All rights reserved.
"""MMEngine extensions of mmadc (hooks registered in MMEngine's root
``HOOKS`` registry, usable from any codebase's config)."""
from .hooks import ADCRateLoggerHook, ADCRateRecordHook, RandomStateHook

__all__ = ['ADCRateLoggerHook', 'ADCRateRecordHook', 'RandomStateHook']
