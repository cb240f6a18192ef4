# Copyright (c) mmadc contributors. All rights reserved.
import importlib.util

from .adc_rate_size_metric import ADCRateSizeMetric
from .adc_receptive_field_metric import ADCReceptiveFieldMetric
from .adc_sample_rate_metric import ADCSampleRateMetric

__all__ = [
    'ADCRateSizeMetric', 'ADCReceptiveFieldMetric', 'ADCSampleRateMetric'
]

if importlib.util.find_spec('mmpose') is not None:  # a pose install
    from .keypoint_error_metric import KeypointErrorMetric  # noqa: F401
    __all__.append('KeypointErrorMetric')
