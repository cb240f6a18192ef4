# Copyright (c) mmadc contributors. All rights reserved.
from .person_size import (MEDIUM_MAX_AREA, SIZE_GROUPS, SIZE_SOURCES,
                          SMALL_MAX_AREA, instance_area, size_group)
from .receptive_field import ReceptiveFieldStats, receptive_field
from .running_stats import RunningStats
from .size_grouped_rates import SizeGroupedRateStats, channel_spread

__all__ = [
    'MEDIUM_MAX_AREA', 'SIZE_GROUPS', 'SIZE_SOURCES', 'SMALL_MAX_AREA',
    'ReceptiveFieldStats', 'RunningStats', 'SizeGroupedRateStats',
    'channel_spread', 'instance_area', 'receptive_field', 'size_group'
]
