# Copyright (c) mmadc contributors. All rights reserved.
"""Analyses of the paper: rate statistics by person size (Fig. 6), keypoint
error analysis (Fig. 5) and receptive fields (Eq. 8)."""
from .keypoint_errors import (ERROR_TYPES, analyze_keypoint_errors,
                              classify_keypoints, counterpart_indices,
                              keypoint_similarity, match_predictions,
                              plot_error_comparison)
from .rate_statistics import (SIZE_GROUPS, ADCRateCollector, RunningStats,
                              SizeGroupedRateStats, find_adc_layers,
                              instance_area, layer_stage, plot_rate_statistics,
                              size_group)
from .receptive_field import ReceptiveFieldStats, receptive_field

__all__ = [
    'ERROR_TYPES', 'SIZE_GROUPS', 'ADCRateCollector', 'ReceptiveFieldStats',
    'RunningStats', 'SizeGroupedRateStats', 'analyze_keypoint_errors',
    'classify_keypoints', 'counterpart_indices', 'find_adc_layers',
    'instance_area', 'keypoint_similarity', 'layer_stage', 'match_predictions',
    'plot_error_comparison', 'plot_rate_statistics', 'receptive_field',
    'size_group'
]
