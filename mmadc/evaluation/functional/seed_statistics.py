# Copyright (c) mmadc contributors. All rights reserved.
"""A model against its baseline over training seeds: each one's mean and
standard deviation, and the paired difference with Student's t interval.

Each seed trains both models, so the seeds pair the runs: the interval of
the difference is that of the mean of the per-seed differences,
``d_bar +- t(1 - alpha / 2, n - 1) * s_d / sqrt(n)`` with the sample
standard deviation ``s_d`` (``ddof=1``). The t quantile is
``scipy.stats.t.ppf`` (scipy is installed with every stack, see
``requirements/openmmlab_pins.txt``).
"""
import math
from typing import Optional, Sequence

import numpy as np


def t_quantile(prob: float, df: int) -> float:
    """The ``prob`` quantile of Student's t distribution with ``df``
    degrees of freedom (``scipy.stats.t.ppf``).

    Args:
        prob (float): Probability in ``(0, 1)``.
        df (int): Degrees of freedom, >= 1.

    Returns:
        float: The quantile.
    """
    if not 0 < prob < 1:
        raise ValueError(f'prob must be in (0, 1), got {prob}')
    if int(df) != df or df < 1:
        raise ValueError(f'df must be an integer >= 1, got {df}')
    from scipy import stats
    return float(stats.t.ppf(prob, int(df)))


def _floats(values: Sequence[Optional[float]]) -> np.ndarray:
    """A float array, None as NaN."""
    return np.asarray([math.nan if v is None else v for v in values],
                      np.float64).reshape(-1)


def t_interval(values: Sequence[Optional[float]], level: float = 0.95) -> dict:
    """The mean with Student's t interval, ``mean +- t(df) * std /
    sqrt(n)``, ``df = n - 1``; None and non-finite values (runs without a
    result) are left out.

    Args:
        values (Sequence[float | None]): One value per seed.
        level (float): Coverage of the interval. Defaults to 0.95.

    Returns:
        dict: ``value`` (the mean), ``std`` (sample standard deviation,
        ``ddof=1``), ``se`` (``std / sqrt(n)``), ``df``, ``t`` (the
        ``(1 + level) / 2`` quantile), ``interval`` (``[low, high]``),
        ``excludes_zero``, ``level`` and ``n`` (values counted). With one
        value there is no spread: everything but ``value``, ``level`` and
        ``n`` is None; without values ``value`` is too.
    """
    if not 0 < level < 1:
        raise ValueError(f'level must be in (0, 1), got {level}')
    values = _floats(values)
    values = values[np.isfinite(values)]
    n = len(values)
    out = dict(
        value=float(values.mean()) if n else None,
        std=None,
        se=None,
        df=None,
        t=None,
        interval=None,
        excludes_zero=None,
        level=float(level),
        n=n)
    if n < 2:
        return out
    std = float(values.std(ddof=1))
    se = std / math.sqrt(n)
    t = t_quantile((1 + level) / 2, n - 1)
    low, high = out['value'] - t * se, out['value'] + t * se
    out.update(
        std=std,
        se=se,
        df=n - 1,
        t=t,
        interval=[low, high],
        excludes_zero=bool(low > 0 or high < 0))
    return out


def paired_t_interval(a: Sequence[Optional[float]],
                      b: Sequence[Optional[float]],
                      level: float = 0.95) -> dict:
    """``mean(a - b)`` over pairs with the paired t interval
    (:func:`t_interval` of the differences, ``df = n - 1``).

    Args:
        a, b (Sequence[float | None]): Paired values (``a[i]`` and ``b[i]``
            from seed ``i``); a pair with a None or non-finite value is
            left out.
        level (float): Coverage of the interval. Defaults to 0.95.

    Returns:
        dict: As :func:`t_interval`, over the differences.
    """
    a, b = _floats(a), _floats(b)
    if a.shape != b.shape:
        raise ValueError('a and b must be paired (one length), got '
                         f'{len(a)} and {len(b)} values')
    return t_interval(a - b, level)
