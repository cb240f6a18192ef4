# Copyright (c) mmadc contributors. All rights reserved.
from .adc_rate_logger_hook import ADCRateLoggerHook
from .adc_rate_record_hook import ADCRateRecordHook
from .random_state_hook import RandomStateHook

__all__ = ['ADCRateLoggerHook', 'ADCRateRecordHook', 'RandomStateHook']
