# Copyright (c) mmadc contributors. All rights reserved.
"""Mean rates over samples with bootstrap intervals, and how they respond
to the input's scale when the same samples are seen at several scales.

The intervals are the bootstrap percentile intervals of
:mod:`.rank_correlation` (:func:`~.rank_correlation.percentile_interval`),
over samples. Every sample is seen at every scale, so the scales are
resampled together (one draw of samples per resample for all of them) and
the difference between two scales is taken per sample (paired).
"""
import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

from .rank_correlation import (BOOTSTRAP_SEED, NUM_RESAMPLES, _check_resamples,
                               percentile_interval)


def bootstrap_means(values: np.ndarray,
                    num_resamples: int = NUM_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED,
                    level: float = 0.95) -> list:
    """The mean of each column with a bootstrap percentile interval over
    rows (samples), all columns resampled with the same rows.

    Args:
        values (np.ndarray): ``(n, k)`` data, one row per sample (a 1-D
            array is one column).
        num_resamples (int): Bootstrap resamples. Defaults to 1000.
        seed (int): Seed of the resampling (``numpy.random.default_rng``),
            so the intervals are reproducible. Defaults to 0.
        level (float): Coverage of the intervals. Defaults to 0.95.

    Returns:
        list[dict]: Per column ``value`` (the mean), ``interval``
        (``[low, high]``) and ``n``; None for both without samples.
    """
    _check_resamples(num_resamples)
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f'values must be 1-D or 2-D, got shape '
                         f'{values.shape}')
    n, k = values.shape
    if n == 0:
        return [dict(value=None, interval=None, n=0) for _ in range(k)]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, (int(num_resamples), n))
    # resample x column: the mean of each resample, one column at a time
    # (num_resamples x n indices, not x k as well)
    means = np.stack([values[:, j][index].mean(1) for j in range(k)], 1)
    out = []
    for j in range(k):
        mean = float(values[:, j].mean())
        out.append(
            dict(
                value=mean if math.isfinite(mean) else None,
                interval=percentile_interval(means[:, j], level),
                n=int(n)))
    return out


def scale_curve(rates: Dict[float, Sequence[float]],
                num_resamples: int = NUM_RESAMPLES,
                seed: int = BOOTSTRAP_SEED,
                level: float = 0.95) -> dict:
    """The mean rate at each scale, and the largest scale's minus the
    smallest's, over the same samples.

    Args:
        rates (dict[float, Sequence[float]]): Scale to each sample's rate
            at that scale, the samples in the same order at every scale.
        num_resamples, seed, level: As :func:`bootstrap_means`.

    Returns:
        dict: ``scales`` (ascending), ``mean``: per scale
        :func:`bootstrap_means`'s ``value``, ``interval`` and ``n`` (with
        ``scale``), and ``largest_minus_smallest``: the mean over samples
        of (rate at the largest scale - rate at the smallest), with its
        interval, ``excludes_zero`` and the two ``scales`` (None in place
        of numbers with a single scale).
    """
    scales = sorted(float(s) for s in rates)
    if not scales:
        raise ValueError('rates must hold at least one scale')
    columns = [np.asarray(rates[s], np.float64).reshape(-1) for s in scales]
    if len({len(c) for c in columns}) != 1:
        raise ValueError('every scale needs the same samples, got '
                         f'{[len(c) for c in columns]} rates')
    table = np.stack(columns + [columns[-1] - columns[0]], 1)
    stats = bootstrap_means(table, num_resamples, seed, level)
    curve = [OrderedDict(scale=s, **st) for s, st in zip(scales, stats)]
    diff: dict = dict(stats[-1])
    if len(scales) < 2:
        diff.update(value=None, interval=None)
    interval: Optional[list] = diff['interval']
    diff['excludes_zero'] = None if interval is None else bool(
        interval[0] > 0 or interval[1] < 0)
    diff['scales'] = [scales[-1], scales[0]]
    return dict(scales=scales, mean=curve, largest_minus_smallest=diff)
