# Copyright (c) mmadc contributors. All rights reserved.
from .adc_rate_size_metric import ADCRateSizeMetric
from .adc_receptive_field_metric import ADCReceptiveFieldMetric

__all__ = ['ADCRateSizeMetric', 'ADCReceptiveFieldMetric']
