# Copyright (c) mmadc contributors. All rights reserved.
"""Spearman's correlation and the bootstrap intervals of the size trend,
against scipy (an independent implementation) and constructed data."""
import numpy as np
import pytest
from scipy import stats

from mmadc.evaluation.functional import (average_ranks,
                                         bootstrap_mean_difference,
                                         bootstrap_spearman, size_trend,
                                         spearman)


def test_average_ranks_against_scipy():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, 40).astype(float)  # many ties
    np.testing.assert_allclose(average_ranks(values), stats.rankdata(values))
    np.testing.assert_allclose(
        average_ranks([3., 1., 3., 2.]), [3.5, 1., 3.5, 2.])


@pytest.mark.parametrize('seed', range(5))
def test_spearman_against_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 50).astype(float)
    y = x + rng.integers(-3, 4, 50)
    assert spearman(x, y) == pytest.approx(
        stats.spearmanr(x, y).correlation, abs=1e-12)
    z = rng.standard_normal(50)
    assert spearman(x, z) == pytest.approx(
        stats.spearmanr(x, z).correlation, abs=1e-12)


def test_spearman_edge_cases():
    assert spearman([1., 2., 3.], [1., 4., 9.]) == pytest.approx(1.)
    assert spearman([1., 2., 3.], [3., 2., 1.]) == pytest.approx(-1.)
    assert np.isnan(spearman([1., 2., 3.], [1., 1., 1.]))
    assert np.isnan(spearman([1.], [2.]))
    with pytest.raises(ValueError, match='x and y'):
        spearman([1., 2.], [1., 2., 3.])


def correlated(n=200, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, x + noise * rng.standard_normal(n)


def test_bootstrap_contains_the_true_value_and_excludes_zero():
    # y = x + 0.3 e, normal: Spearman's rho is 6/pi asin(r/2) with Pearson
    # r = 1/sqrt(1 + 0.09)
    r = 1 / np.sqrt(1 + 0.3**2)
    true_rho = 6 / np.pi * np.arcsin(r / 2)
    x, y = correlated()
    res = bootstrap_spearman(x, y)
    low, high = res['interval']
    assert low < true_rho < high
    assert low < res['value'] < high
    assert res['excludes_zero'] and low > 0.8
    assert res['n'] == 200


def test_bootstrap_includes_zero_for_independent_data():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(200), rng.standard_normal(200)
    res = bootstrap_spearman(x, y, num_resamples=500, seed=1)
    assert res['interval'][0] < 0 < res['interval'][1]
    assert res['excludes_zero'] is False
    diff = bootstrap_mean_difference(x[:100], y[:100], seed=1)
    assert diff['interval'][0] < 0 < diff['interval'][1]


def test_bootstrap_is_reproducible():
    x, y = correlated(n=60, noise=2., seed=4)
    assert bootstrap_spearman(x, y, seed=7) == bootstrap_spearman(x, y, seed=7)
    assert bootstrap_spearman(x, y, seed=7) != bootstrap_spearman(x, y, seed=8)
    assert bootstrap_mean_difference(x, y, 200, 5) == \
        bootstrap_mean_difference(x, y, 200, 5)
    with pytest.raises(ValueError, match='num_resamples'):
        bootstrap_spearman(x, y, num_resamples=0)


def test_mean_difference_by_hand():
    rng = np.random.default_rng(2)
    a, b = 2. + rng.standard_normal(80), rng.standard_normal(60)
    res = bootstrap_mean_difference(a, b)
    assert res['value'] == pytest.approx(a.mean() - b.mean())
    # the standard error of a difference of means, ~ interval / 3.92
    se = np.sqrt(a.var() / 80 + b.var() / 60)
    assert res['interval'][1] - res['interval'][0] == pytest.approx(
        3.92 * se, rel=0.15)
    assert res['interval'][0] < 2. < res['interval'][1]
    assert res['n'] == [80, 60]
    empty = bootstrap_mean_difference(a, [])
    assert empty['value'] is None and empty['interval'] is None


def test_size_trend_of_constructed_rates():
    areas = np.array([100., 500., 2000., 5000., 10000., 20000.])
    groups = ['small', 'small', 'medium', 'medium', 'large', 'large']
    rates = 1 + np.log(areas) / 10  # grows with area
    trend = size_trend(areas, rates, groups, num_resamples=200)
    assert trend['spearman']['value'] == pytest.approx(1.)
    assert trend['large_minus_small']['value'] == pytest.approx(
        rates[4:].mean() - rates[:2].mean())
    assert trend['large_minus_small']['excludes_zero']
    flat = size_trend(areas, np.ones(6), groups, num_resamples=10)
    assert flat['spearman'] == dict(
        value=None, interval=None, excludes_zero=None, n=6)


def test_bootstrap_resamples_are_spearman_of_the_resample():
    # the interval from counted ranks equals the percentiles of scipy's
    # Spearman on each resample, drawn with the same generator
    rng = np.random.default_rng(6)
    x = rng.integers(0, 8, 30).astype(float)
    y = x + rng.integers(-4, 5, 30)
    index = np.random.default_rng(9).integers(0, 30, (50, 30))
    expected = np.percentile(
        [stats.spearmanr(x[i], y[i]).correlation for i in index], [2.5, 97.5])
    res = bootstrap_spearman(x, y, num_resamples=50, seed=9)
    np.testing.assert_allclose(res['interval'], expected, rtol=1e-12)
