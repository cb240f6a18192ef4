# Copyright (c) mmadc contributors. All rights reserved.
"""Dilation-rate statistics of ADC layers by person size (Fig. 6).

Rates are kept **per dilation group**, not expanded to channels: the
``C_in / g`` channels of a group share one rate, so a per-channel table
would repeat each value ``C_in / g`` times. With the paper's default
``g = C_in`` a group is a channel; the summary records ``in_channels``,
``dilation_groups`` and ``channels_per_group`` (group ``j`` holds channels
``j * C_in / g .. (j + 1) * C_in / g - 1``). Variances are population
variances (``ddof=0``, as ``numpy.var``) over the instances of a group.

Besides the running statistics, each person's area and mean rate per layer
(over the layer's dilation groups) are kept, for the rank correlation
between size and rate (:func:`~.rank_correlation.size_trend`): persons x
(layers + 2) values, e.g. 1.8M for COCO's ~100k detected persons and 16
layers, some tens of MB as Python floats: small next to the model.
"""
import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from torch import Tensor

from .person_size import MEDIUM_MAX_AREA, SIZE_GROUPS, SMALL_MAX_AREA
from .rank_correlation import BOOTSTRAP_SEED, NUM_RESAMPLES, size_trend
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
        # per person, in arrival order: area, size group, and per layer the
        # mean rate over its dilation groups (equal-sized, so also over its
        # channels); the trend statistics need persons, not running sums
        self.areas: List[float] = []
        self.groups: List[str] = []
        self.person_rates: Dict[str, List[float]] = {
            name: []
            for name in self.layers
        }

    def update(self,
               rates: Dict[str, Tensor],
               groups: Sequence[str],
               sources: Sequence[str] = (),
               areas: Optional[Sequence[float]] = None) -> None:
        """Add the rates of one batch.

        Args:
            rates (dict[str, Tensor]): ``(N, g)`` rates per layer, row ``i``
                for instance ``i``.
            groups (Sequence[str]): Size group of each instance.
            sources (Sequence[str]): Where each area came from (counted for
                the report).
            areas (Sequence[float], optional): Area of each instance, for
                the size trend of :meth:`summary`; without them (in any
                batch) the summary has no trend.
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
        if areas is not None and len(areas) != num:
            raise ValueError(f'areas must have one entry per instance, got '
                             f'{len(areas)} for {num}')
        index = np.asarray(groups)
        for name, layer_rates in rates.items():
            if name not in self.stats:
                continue
            values = np.asarray(
                layer_rates.detach().cpu().double().numpy() if isinstance(
                    layer_rates, Tensor) else layer_rates, np.float64)
            self.stats[name]['all'].update(values)
            self.person_rates[name].extend(values.mean(1).tolist())
            for group in SIZE_GROUPS:
                mask = index == group
                if mask.any():
                    self.stats[name][group].update(values[mask])
        for group in groups:
            self.counts[group] += 1
        self.groups.extend(groups)
        # NaN marks a batch without areas, so the trend is left out
        if areas is None:
            areas = [math.nan] * num
        self.areas.extend(float(a) for a in areas)
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
        self.areas.extend(other.areas)
        self.groups.extend(other.groups)
        for name, values in other.person_rates.items():
            self.person_rates[name].extend(values)
        for source, count in other.area_sources.items():
            self.area_sources[source] = self.area_sources.get(source,
                                                              0) + count

    @property
    def num_instances(self) -> int:
        """Instances seen so far."""
        return sum(self.counts.values())

    def stage_person_rates(self) -> 'OrderedDict[str, np.ndarray]':
        """Each person's mean rate per stage: the mean over the stage's
        layers of the per-layer person means (each layer weighs the
        same)."""
        by_stage: 'OrderedDict[str, list]' = OrderedDict()
        for name, info in self.layers.items():
            by_stage.setdefault(info['stage'],
                                []).append(self.person_rates[name])
        return OrderedDict((stage, np.mean(np.asarray(rows, np.float64), 0))
                           for stage, rows in by_stage.items())

    def trends(self,
               num_resamples: int = NUM_RESAMPLES,
               seed: int = BOOTSTRAP_SEED) -> Optional[dict]:
        """The size trend (:func:`size_trend`) per layer and per stage.

        Args:
            num_resamples (int): Bootstrap resamples. Defaults to 1000.
            seed (int): Bootstrap seed. Defaults to 0.

        Returns:
            dict | None: ``layers`` and ``stages``, name to trend; None
            when some person came without an area.
        """
        areas = np.asarray(self.areas, np.float64)
        if not len(areas) or np.isnan(areas).any():
            return None
        layers = OrderedDict(
            (name, size_trend(areas, values, self.groups, num_resamples, seed))
            for name, values in self.person_rates.items())
        stages = OrderedDict(
            (stage,
             size_trend(areas, values, self.groups, num_resamples, seed))
            for stage, values in self.stage_person_rates().items())
        return dict(layers=layers, stages=stages)

    def summary(self,
                num_resamples: int = NUM_RESAMPLES,
                seed: int = BOOTSTRAP_SEED,
                **meta) -> dict:
        """A JSON-ready summary.

        Args:
            num_resamples (int): Bootstrap resamples of the size trend.
                Defaults to 1000.
            seed (int): Seed of the bootstrap. Defaults to 0.
            **meta: Extra top-level entries (config, checkpoint, ...).

        Returns:
            dict: ``num_instances`` per group (and ``all``), the size-group
            thresholds, and per layer its layer description plus, per size
            group, ``count``, ``mean`` and ``var`` lists (one entry per
            dilation group; None where a group has no instances) and, in
            ``channel_spread``, the mean and standard deviation of the
            mean rates across channels (:func:`channel_spread`). With
            the persons' areas, ``size_trend`` per layer and
            ``stage_trends`` per stage: Spearman's correlation between
            box area and mean rate and the mean rate of large minus
            small persons, each with a bootstrap 95% interval
            (:func:`size_trend`), and ``persons``: each person's area,
            group and mean rate per stage (for the plots).
        """
        trends = self.trends(num_resamples, seed)
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
            if trends is not None:
                entry['size_trend'] = trends['layers'][name]
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
        if trends is not None:
            out.update(
                size_trend=dict(
                    method="Spearman's rank correlation (average ranks "
                    'for ties) of box area and mean rate over persons; '
                    'large_minus_small: difference of the groups\' mean '
                    'rates; 95% bootstrap percentile intervals over '
                    'persons (the difference resampled within each group)',
                    num_resamples=int(num_resamples),
                    seed=int(seed)),
                stage_trends=trends['stages'],
                persons=dict(
                    area=list(self.areas),
                    group=list(self.groups),
                    stage_rate=OrderedDict((stage, values.tolist())
                                           for stage, values in
                                           self.stage_person_rates().items())))
        return out
