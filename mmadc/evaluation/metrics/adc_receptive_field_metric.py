# Copyright (c) mmadc contributors. All rights reserved.
"""Observed ADC rates and their receptive fields as an evaluation metric
(Eq. 8)."""
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..functional import ReceptiveFieldStats
from .adc_rate_size_metric import sample_rates


@METRICS.register_module()
class ADCReceptiveFieldMetric(BaseMetric):
    """Rates and receptive fields of every ADC layer over a dataset.

    Every pass of a sample through a layer counts (a flip test's second
    pass, every window of sliding-window inference), as the receptive
    fields the model actually used. The rates come from
    :class:`~mmadc.engine.ADCRateRecordHook`; each process accumulates
    running statistics that :meth:`evaluate` merges. The per-layer rows of
    :meth:`ReceptiveFieldStats.summary` are kept in :attr:`rows` of the
    main process; the logged scalars are, per stage, the mean rate
    (``<stage>/rate``) and the mean receptive field in pixels
    (``<stage>/receptive_field``).

    .. code-block:: python

        custom_hooks = [dict(type='ADCRateRecordHook')]
        test_evaluator = dict(type='ADCReceptiveFieldMetric')

    Args:
        collect_device (str): Where per-process results are gathered,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'adc_receptive_field'``.
    """

    default_prefix: Optional[str] = 'adc_receptive_field'

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self._stats: Optional[ReceptiveFieldStats] = None
        self.rows: Optional[list] = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Add the rates of a batch."""
        if not data_samples:
            return
        rates = [sample_rates(s, type(self).__name__) for s in data_samples]
        if self._stats is None:
            self._stats = ReceptiveFieldStats(data_samples[0]['adc_layers'])
        self._stats.update(
            {name: torch.cat([r[name] for r in rates])
             for name in rates[0]})

    def evaluate(self, size: int) -> dict:
        """Merge the statistics of all processes and summarise them."""
        self.results = [] if self._stats is None else [self._stats]
        self._stats = None
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> dict:
        if not results:
            raise ValueError(f'{type(self).__name__}: no samples were '
                             'evaluated (an empty dataset?)')
        stats = results[0]
        for part in results[1:]:
            stats.merge(part)
        self.rows = stats.summary()
        by_stage = OrderedDict()
        for row in self.rows:
            if row['samples']:
                by_stage.setdefault(row['stage'], []).append(row)
        metrics = OrderedDict()
        for stage, rows in by_stage.items():
            metrics[f'{stage}/rate'] = float(
                np.mean([r['rate']['mean'] for r in rows]))
            metrics[f'{stage}/receptive_field'] = float(
                np.mean([r['receptive_field']['mean'] for r in rows]))
        return metrics
