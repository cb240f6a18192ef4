# Copyright (c) mmadc contributors. All rights reserved.
"""Evaluation of mmadc: metrics that run inside MMEngine's test and
validation loops (registered in MMEngine's root ``METRICS`` registry,
usable from any codebase's config), and the statistics they compute."""
from .metrics import ADCRateSizeMetric, ADCReceptiveFieldMetric

__all__ = ['ADCRateSizeMetric', 'ADCReceptiveFieldMetric']
