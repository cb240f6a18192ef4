# Copyright (c) mmadc contributors. All rights reserved.
"""Dilation-rate statistics of ADC layers by person size (Fig. 6).

Rates are kept **per dilation group**, not expanded to channels: the
``C_in / g`` channels of a group share one rate, so a per-channel table
would repeat each value ``C_in / g`` times. With the paper's default
``g = C_in`` a group is a channel; the summary records ``in_channels``,
``dilation_groups`` and ``channels_per_group`` (group ``j`` holds channels
``j * C_in / g .. (j + 1) * C_in / g - 1``). Variances are population
variances (``ddof=0``, as ``numpy.var``) over the instances of a group.
"""
import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from torch import Tensor

from .person_size import MEDIUM_MAX_AREA, SIZE_GROUPS, SMALL_MAX_AREA
from .running_stats import RunningStats


def _floats(values: np.ndarray) -> List[Optional[float]]:
    """A JSON-ready list: NaN becomes None."""
    return [None if math.isnan(v) else float(v) for v in values]


def channel_spread(mean: np.ndarray) -> dict:
    """Mean and spread across channels of a layer's mean rates.

    The paper argues with the variance of the rates across the channels
    of a block (large persons: larger and more varied rates). The groups
    of a layer hold equally many channels, so the mean and the population
    standard deviation over the channels equal those over the groups.

    Args:
        mean (np.ndarray): Mean rate per dilation group.

    Returns:
        dict: ``mean`` and ``std`` (``ddof=0``) across channels, None
        without instances.
    """
    if np.isnan(mean).any():
        return dict(mean=None, std=None)
    return dict(mean=float(mean.mean()), std=float(mean.std()))


class SizeGroupedRateStats:
    """Rate statistics per ADC layer, dilation group and person size group.

    Args:
        layers (dict[str, dict]): Qualified name to
            :func:`~mmadc.models.utils.layer_info` of each ADC layer
            (:func:`~mmadc.models.utils.describe_adc_layers`).
    """

    def __init__(self, layers: Dict[str, dict]) -> None:
        self.layers = OrderedDict(
            (name, copy.deepcopy(info)) for name, info in layers.items())
        self.stats = {
            name: {
                group: RunningStats(int(info['dilation_groups']))
                for group in SIZE_GROUPS + ('all', )
            }
            for name, info in self.layers.items()
        }
        self.counts = {group: 0 for group in SIZE_GROUPS}
        self.area_sources: Dict[str, int] = {}

    def update(self,
               rates: Dict[str, Tensor],
               groups: Sequence[str],
               sources: Sequence[str] = ()) -> None:
        """Add the rates of one batch.

        Args:
            rates (dict[str, Tensor]): ``(N, g)`` rates per layer, row ``i``
                for instance ``i``.
            groups (Sequence[str]): Size group of each instance.
            sources (Sequence[str]): Where each area came from (counted for
                the report).
        """
        num = len(groups)
        bad = [g for g in groups if g not in SIZE_GROUPS]
        if bad:
            raise ValueError(f'unknown size groups {sorted(set(bad))}; use '
                             f'{SIZE_GROUPS}')
        for name in self.layers:
            rows = None if name not in rates else rates[name].shape[0]
            if rows != num:
                raise RuntimeError(
                    f'ADC layer {name} recorded {rows or 0} rate rows for '
                    f'{num} instances: rate statistics need exactly one '
                    'forward per instance (flip test and test-time '
                    'augmentation must be off)')
        index = np.asarray(groups)
        for name, layer_rates in rates.items():
            if name not in self.stats:
                continue
            values = np.asarray(
                layer_rates.detach().cpu().double().numpy() if isinstance(
                    layer_rates, Tensor) else layer_rates, np.float64)
            self.stats[name]['all'].update(values)
            for group in SIZE_GROUPS:
                mask = index == group
                if mask.any():
                    self.stats[name][group].update(values[mask])
        for group in groups:
            self.counts[group] += 1
        for source in sources:
            self.area_sources[source] = self.area_sources.get(source, 0) + 1

    def merge(self, other: 'SizeGroupedRateStats') -> None:
        """Add the instances another collection has seen (e.g. another
        process's share of the dataset).

        Args:
            other (SizeGroupedRateStats): Statistics of the same layers.
        """
        if list(other.layers) != list(self.layers):
            raise ValueError('cannot merge rate statistics of different '
                             'ADC layers')
        for name, per_group in other.stats.items():
            for group, stats in per_group.items():
                self.stats[name][group].merge(stats)
        for group, count in other.counts.items():
            self.counts[group] += count
        for source, count in other.area_sources.items():
            self.area_sources[source] = self.area_sources.get(source,
                                                              0) + count

    @property
    def num_instances(self) -> int:
        """Instances seen so far."""
        return sum(self.counts.values())

    def summary(self, **meta) -> dict:
        """A JSON-ready summary.

        Args:
            **meta: Extra top-level entries (config, checkpoint, ...).

        Returns:
            dict: ``num_instances`` per group (and ``all``), the size-group
            thresholds, and per layer its layer description plus, per size
            group, ``count``, ``mean`` and ``var`` lists (one entry per
            dilation group; None where a group has no instances) and, in
            ``channel_spread``, the mean and standard deviation of the
            mean rates across channels (:func:`channel_spread`).
        """
        layers = OrderedDict()
        for name, info in self.layers.items():
            entry = copy.deepcopy(info)
            entry['groups'] = OrderedDict((
                group,
                dict(
                    count=st.count, mean=_floats(st.mean), var=_floats(st.var))
            ) for group, st in self.stats[name].items())
            entry['channel_spread'] = OrderedDict(
                (group, channel_spread(st.mean))
                for group, st in self.stats[name].items())
            layers[name] = entry
        counts = dict(self.counts)
        counts['all'] = sum(self.counts.values())
        out = dict(meta)
        out.update(
            size_groups=dict(
                small=f'area < {SMALL_MAX_AREA}',
                medium=f'{SMALL_MAX_AREA} <= area < {MEDIUM_MAX_AREA}',
                large=f'area >= {MEDIUM_MAX_AREA}'),
            area_sources=dict(self.area_sources),
            num_instances=counts,
            statistics='per dilation group (channels_per_group channels '
            'share a rate); var is the population variance (ddof=0) over '
            'instances; channel_spread: mean and std (ddof=0) of the mean '
            'rates across channels',
            layers=layers)
        return out
