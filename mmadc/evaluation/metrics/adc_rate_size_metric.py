# Copyright (c) mmadc contributors. All rights reserved.
"""ADC dilation rates by person size as an evaluation metric (Fig. 6)."""
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..functional import (BOOTSTRAP_SEED, NUM_RESAMPLES, SIZE_GROUPS,
                          SIZE_SOURCES, SizeGroupedRateStats, instance_area,
                          size_group)


def sample_rates(data_sample: dict, metric: str) -> dict:
    """The ``adc_rates`` :class:`~mmadc.engine.ADCRateRecordHook` stored
    in a prediction, with a message naming the hook where they are
    missing."""
    rates = data_sample.get('adc_rates')
    if rates is None or 'adc_layers' not in data_sample:
        raise RuntimeError(
            f'{metric} needs the ADC rates of every prediction: add '
            "dict(type='ADCRateRecordHook') to the config's custom_hooks")
    return rates


@METRICS.register_module()
class ADCRateSizeMetric(BaseMetric):
    """Mean and variance of every ADC layer's rates per person size group.

    The rates of each person (recorded by
    :class:`~mmadc.engine.ADCRateRecordHook`) go to COCO's small, medium
    or large group by the person's area (:func:`instance_area`,
    :func:`size_group`) and are accumulated per layer, dilation group and
    size group in running statistics, so memory does not grow with the
    dataset; each process keeps its own, and :meth:`evaluate` merges
    them. The full report (:meth:`SizeGroupedRateStats.summary`) is kept
    in :attr:`summary` of the main process; the logged scalars are the
    instance counts ``num_<group>`` and, per stage and size group, the
    mean rate over the stage's channels (``<stage>/<group>``) and, per
    stage, Spearman's correlation between a person's box area and mean
    rate (``<stage>/spearman``) and the mean rate of large minus small
    persons (``<stage>/large_minus_small``); their bootstrap intervals are
    in :attr:`summary` (``stage_trends``, and ``size_trend`` per layer).
    For these each person's area and mean rate per layer are kept
    (persons x layers floats, small next to the model).

    One forward per person is needed (no flip test or test-time
    augmentation), and every person must be counted once: with a sampler
    that pads the last batches (``round_up=True``) the repeated persons
    would enter the statistics, so :meth:`evaluate` checks that the
    instances counted equal the dataset's size.

    .. code-block:: python

        custom_hooks = [dict(type='ADCRateRecordHook')]
        test_evaluator = dict(type='ADCRateSizeMetric', size_by='bbox')

    Args:
        size_by (str): Person size from the box ``w * h`` (``'bbox'``, the
            paper's grouping; the detection's box for detected persons)
            or the annotation's segment ``area`` (``'area'``, COCOeval's).
            Defaults to ``'bbox'``.
        collect_device (str): Where per-process results are gathered,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'adc_rate'``.
        num_resamples (int): Bootstrap resamples of the size trend's
            intervals. Defaults to 1000.
        seed (int): Seed of the bootstrap, so the intervals are
            reproducible. Defaults to 0.
    """

    default_prefix: Optional[str] = 'adc_rate'

    def __init__(self,
                 size_by: str = 'bbox',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 num_resamples: int = NUM_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if size_by not in SIZE_SOURCES:
            raise ValueError(f'size_by must be one of {SIZE_SOURCES}, got '
                             f'{size_by!r}')
        if int(num_resamples) != num_resamples or num_resamples < 1:
            raise ValueError('num_resamples must be an integer >= 1, got '
                             f'{num_resamples}')
        self.size_by = size_by
        self.num_resamples = int(num_resamples)
        self.seed = int(seed)
        self._stats: Optional[SizeGroupedRateStats] = None
        self._size = 0
        self.summary: Optional[dict] = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Add the rates of a batch to the running statistics."""
        if not data_samples:
            return
        rates = [sample_rates(s, type(self).__name__) for s in data_samples]
        if self._stats is None:
            self._stats = SizeGroupedRateStats(data_samples[0]['adc_layers'])
        areas = [instance_area(s, self.size_by) for s in data_samples]
        self._stats.update(
            {name: torch.cat([r[name] for r in rates])
             for name in rates[0]}, [size_group(a) for a, _ in areas],
            [source for _, source in areas], [a for a, _ in areas])

    def evaluate(self, size: int) -> dict:
        """Merge the statistics of all processes and summarise them.

        Args:
            size (int): Length of the dataset.

        Returns:
            dict: The scalars (see the class description).
        """
        self.results = [] if self._stats is None else [self._stats]
        self._stats = None
        self._size = size
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> dict:
        if not results:
            raise ValueError(f'{type(self).__name__}: no persons were '
                             'evaluated (an empty dataset?)')
        stats = results[0]
        for part in results[1:]:
            stats.merge(part)
        if stats.num_instances != self._size:
            raise ValueError(
                f'{type(self).__name__} counted {stats.num_instances} '
                f'persons for a dataset of {self._size}: each must be '
                'counted once (a sampler with round_up=True repeats '
                'persons; use round_up=False)')
        self.summary = stats.summary(
            self.num_resamples, self.seed, size_by=self.size_by)
        metrics = OrderedDict(
            (f'num_{group}', stats.counts[group]) for group in SIZE_GROUPS)
        by_stage = OrderedDict()
        for entry in self.summary['layers'].values():
            by_stage.setdefault(entry['stage'], []).append(entry)
        for stage, entries in by_stage.items():
            for group in SIZE_GROUPS:
                means = [e['channel_spread'][group]['mean'] for e in entries]
                if None not in means:
                    metrics[f'{stage}/{group}'] = float(np.mean(means))
        for stage, trend in self.summary.get('stage_trends', {}).items():
            for key in ('spearman', 'large_minus_small'):
                if trend[key]['value'] is not None:
                    metrics[f'{stage}/{key}'] = trend[key]['value']
        return metrics
