# Copyright (c) mmadc contributors. All rights reserved.
"""Rank correlation and bootstrap intervals for "rates grow with person
size" (the paper's Fig. 6 claim as a statistic).

numpy only: the implementation is checked against ``scipy.stats`` in the
tests, so scipy stays an independent oracle rather than the code under
test.
"""
import math
from typing import Optional, Sequence

import numpy as np

#: Bootstrap defaults: resamples and the seed of their generator.
NUM_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _codes(values: Sequence[float]) -> tuple:
    """Each value's index among the sorted distinct values, and how many
    distinct values there are."""
    values = np.asarray(values, np.float64).reshape(-1)
    distinct, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1), len(distinct)


def _code_ranks(codes: np.ndarray, num_distinct: int) -> np.ndarray:
    """Average ranks from :func:`_codes` (or a resample of them): a tie
    block of ``c`` values ending at rank ``e`` holds ranks ``e-c+1 .. e``.
    Counting instead of sorting makes a bootstrap resample O(n)."""
    counts = np.bincount(codes, minlength=num_distinct)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.)[codes]


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks.

    Args:
        values (Sequence[float]): 1-D data.

    Returns:
        np.ndarray: Float ranks, one per value.
    """
    return _code_ranks(*_codes(values))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation; NaN when either variable is constant."""
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    return math.nan if denom == 0 else float(x @ y) / denom


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks).

    Args:
        x (Sequence[float]): First variable.
        y (Sequence[float]): Second variable, as long as ``x``.

    Returns:
        float: The correlation; NaN when either variable is constant or
        fewer than two pairs are given (no ranking to correlate).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError('x and y must be 1-D of one length, got shapes '
                         f'{x.shape} and {y.shape}')
    if len(x) < 2:
        return math.nan
    return _pearson(average_ranks(x), average_ranks(y))


def percentile_interval(samples: np.ndarray,
                        level: float = 0.95) -> Optional[list]:
    """The bootstrap percentile interval of the finite samples, or None
    when there are none."""
    samples = np.asarray(samples, np.float64)
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return None
    tail = 50. * (1. - level)
    low, high = np.percentile(samples, [tail, 100. - tail])
    return [float(low), float(high)]


def _check_resamples(num_resamples: int) -> None:
    if int(num_resamples) != num_resamples or num_resamples < 1:
        raise ValueError(
            f'num_resamples must be an integer >= 1, got {num_resamples}')


def bootstrap_spearman(x: Sequence[float],
                       y: Sequence[float],
                       num_resamples: int = NUM_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> dict:
    """Spearman's correlation with a bootstrap percentile interval over
    pairs (persons drawn with replacement).

    Args:
        x, y (Sequence[float]): Paired data.
        num_resamples (int): Bootstrap resamples. Defaults to 1000.
        seed (int): Seed of the resampling, so the interval is
            reproducible. Defaults to 0.
        level (float): Coverage of the interval. Defaults to 0.95.

    Returns:
        dict: ``value``, ``interval`` (``[low, high]``), ``excludes_zero``
        and ``n``; None in place of a number that does not exist (constant
        data). Resamples whose correlation is undefined (all ties) are
        left out of the interval.
    """
    _check_resamples(num_resamples)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    value = spearman(x, y)
    interval = None
    if math.isfinite(value):
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(x), (int(num_resamples), len(x)))
        (cx, kx), (cy, ky) = _codes(x), _codes(y)
        # spearman(x[i], y[i]) per resample, without sorting each one
        interval = percentile_interval([
            _pearson(_code_ranks(cx[i], kx), _code_ranks(cy[i], ky))
            for i in index
        ], level)
    return _result(value, interval, len(x))


def bootstrap_mean_difference(a: Sequence[float],
                              b: Sequence[float],
                              num_resamples: int = NUM_RESAMPLES,
                              seed: int = BOOTSTRAP_SEED,
                              level: float = 0.95) -> dict:
    """``mean(a) - mean(b)`` with a bootstrap percentile interval, each
    sample resampled within itself (the group sizes stay fixed, so no
    resample loses a group).

    Args:
        a, b (Sequence[float]): The two samples (e.g. large and small
            persons' mean rates).
        num_resamples, seed, level: As :func:`bootstrap_spearman`.

    Returns:
        dict: As :func:`bootstrap_spearman`, with ``n`` the two sizes.
    """
    _check_resamples(num_resamples)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not len(a) or not len(b):
        return _result(math.nan, None, [len(a), len(b)])
    rng = np.random.default_rng(seed)
    size = (int(num_resamples), )
    diffs = (
        a[rng.integers(0, len(a), size + a.shape)].mean(1) -
        b[rng.integers(0, len(b), size + b.shape)].mean(1))
    return _result(
        float(a.mean() - b.mean()), percentile_interval(diffs, level),
        [len(a), len(b)])


def _result(value: float, interval: Optional[list], n) -> dict:
    return dict(
        value=None if not math.isfinite(value) else value,
        interval=interval,
        excludes_zero=None
        if interval is None else bool(interval[0] > 0 or interval[1] < 0),
        n=n)


def size_trend(areas: Sequence[float],
               rates: Sequence[float],
               groups: Sequence[str],
               num_resamples: int = NUM_RESAMPLES,
               seed: int = BOOTSTRAP_SEED) -> dict:
    """How one rate per person goes with the person's size.

    Args:
        areas (Sequence[float]): Box area of each person.
        rates (Sequence[float]): Each person's mean rate.
        groups (Sequence[str]): Each person's COCO size group.
        num_resamples, seed: As :func:`bootstrap_spearman`.

    Returns:
        dict: ``spearman`` (:func:`bootstrap_spearman` of area and rate)
        and ``large_minus_small`` (:func:`bootstrap_mean_difference`).
    """
    rates = np.asarray(rates, np.float64)
    groups = np.asarray(groups)
    return dict(
        spearman=bootstrap_spearman(areas, rates, num_resamples, seed),
        large_minus_small=bootstrap_mean_difference(rates[groups == 'large'],
                                                    rates[groups == 'small'],
                                                    num_resamples, seed))
