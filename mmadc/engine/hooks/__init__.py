# Copyright (c) mmadc contributors. All rights reserved.
from .adc_rate_logger_hook import ADCRateLoggerHook
from .random_state_hook import RandomStateHook

__all__ = ['ADCRateLoggerHook', 'RandomStateHook']
