# Copyright (c) mmadc contributors. All rights reserved.
from .keypoint_errors import (ERROR_TYPES, analyze_keypoint_errors,
                              classify_keypoints, counterpart_indices,
                              keypoint_similarity, match_predictions)
from .person_size import (MEDIUM_MAX_AREA, SIZE_GROUPS, SIZE_SOURCES,
                          SMALL_MAX_AREA, instance_area, size_group)
from .rank_correlation import (BOOTSTRAP_SEED, NUM_RESAMPLES, average_ranks,
                               bootstrap_mean_difference, bootstrap_spearman,
                               percentile_interval, size_trend, spearman)
from .receptive_field import ReceptiveFieldStats, receptive_field
from .running_stats import RunningStats
from .scale_response import bootstrap_means, scale_curve
from .seed_statistics import paired_t_interval, t_interval, t_quantile
from .size_grouped_rates import SizeGroupedRateStats, channel_spread

__all__ = [
    'ERROR_TYPES', 'analyze_keypoint_errors', 'classify_keypoints',
    'counterpart_indices', 'keypoint_similarity', 'match_predictions',
    'MEDIUM_MAX_AREA', 'SIZE_GROUPS', 'SIZE_SOURCES', 'SMALL_MAX_AREA',
    'ReceptiveFieldStats', 'RunningStats', 'SizeGroupedRateStats',
    'channel_spread', 'instance_area', 'receptive_field', 'size_group',
    'BOOTSTRAP_SEED', 'NUM_RESAMPLES', 'average_ranks',
    'bootstrap_mean_difference', 'bootstrap_spearman', 'percentile_interval',
    'size_trend', 'spearman', 'bootstrap_means', 'scale_curve', 't_interval',
    'paired_t_interval', 't_quantile'
]
