# Copyright (c) mmadc contributors. All rights reserved.
from .adc_rate_logger_hook import ADCRateLoggerHook

__all__ = ['ADCRateLoggerHook']
