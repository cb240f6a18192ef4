# Copyright (c) mmadc contributors. All rights reserved.
"""Each sample's mean ADC rate per layer and per stage as an evaluation
metric (the scale response's per-scale numbers)."""
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from mmadc.models.utils import layer_stage
from ..functional import BOOTSTRAP_SEED, NUM_RESAMPLES, bootstrap_means
from .adc_rate_size_metric import sample_rates


def sample_key(data_sample: dict) -> str:
    """What identifies a sample across runs over the same dataset: a
    top-down pose instance by its image and instance ids, an image by its
    path."""
    if data_sample.get('id') is not None:
        return f'{data_sample.get("img_id")}/{data_sample["id"]}'
    return str(data_sample.get('img_path'))


@METRICS.register_module()
class ADCSampleRateMetric(BaseMetric):
    """Every sample's mean rate per ADC layer and per stage, and their
    means over the samples with bootstrap intervals.

    A sample's rate of a layer is the mean over the layer's dilation
    groups (equally many channels each, so also over its channels) and
    over the sample's passes through the layer (several with
    sliding-window inference); its rate of a stage is the mean of its
    rates of the stage's layers (each layer weighs the same). The rates
    come from :class:`~mmadc.engine.ADCRateRecordHook`. The per-sample
    rates are kept in :attr:`samples` of the main process (``key`` of each
    sample, ``layer_rate`` and ``stage_rate``: name to one float per
    sample, in dataset order) and the means over samples in
    :attr:`summary` (per stage :func:`bootstrap_means`' ``value``,
    ``interval`` and ``n``; per layer the mean); the logged scalars are
    the stages' means (``<stage>/mean``).

    .. code-block:: python

        custom_hooks = [dict(type='ADCRateRecordHook')]
        test_evaluator = dict(type='ADCSampleRateMetric')

    Args:
        collect_device (str): Where per-process results are gathered,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'adc_sample_rate'``.
        num_resamples (int): Bootstrap resamples of the intervals.
            Defaults to 1000.
        seed (int): Seed of the bootstrap. Defaults to 0.
    """

    default_prefix: Optional[str] = 'adc_sample_rate'

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 num_resamples: int = NUM_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if int(num_resamples) != num_resamples or num_resamples < 1:
            raise ValueError('num_resamples must be an integer >= 1, got '
                             f'{num_resamples}')
        self.num_resamples = int(num_resamples)
        self.seed = int(seed)
        self._size = 0
        self.samples: Optional[dict] = None
        self.summary: Optional[dict] = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each sample's key and mean rate per layer."""
        for sample in data_samples:
            rates = sample_rates(sample, type(self).__name__)
            self.results.append((sample_key(sample),
                                 OrderedDict(
                                     (name, float(values.double().mean()))
                                     for name, values in rates.items())))

    def evaluate(self, size: int) -> dict:
        """Gather the samples of all processes and summarise them."""
        self._size = size
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> dict:
        if not results:
            raise ValueError(f'{type(self).__name__}: no samples were '
                             'evaluated (an empty dataset?)')
        if len(results) != self._size:
            raise ValueError(
                f'{type(self).__name__} got rates of {len(results)} samples '
                f'for a dataset of {self._size}: each must be counted once')
        layers = list(results[0][1])
        if any(list(rates) != layers for _, rates in results):
            raise ValueError(f'{type(self).__name__}: the samples recorded '
                             'rates of different ADC layers')
        layer_rate = OrderedDict(
            (name, [rates[name] for _, rates in results]) for name in layers)
        by_stage: 'OrderedDict[str, list]' = OrderedDict()
        for name in layers:
            by_stage.setdefault(layer_stage(name), []).append(layer_rate[name])
        stage_rate = OrderedDict(
            (stage, np.mean(np.asarray(rows, np.float64), 0).tolist())
            for stage, rows in by_stage.items())
        self.samples = dict(
            key=[key for key, _ in results],
            layer_rate=layer_rate,
            stage_rate=stage_rate)
        stats = bootstrap_means(
            np.asarray(list(stage_rate.values()), np.float64).T,
            self.num_resamples, self.seed)
        self.summary = dict(
            num_samples=len(results),
            stages=OrderedDict(zip(stage_rate, stats)),
            layers=OrderedDict(
                (name,
                 dict(stage=layer_stage(name), mean=float(np.mean(values))))
                for name, values in layer_rate.items()))
        return OrderedDict((f'{stage}/mean', st['value'])
                           for stage, st in self.summary['stages'].items())
