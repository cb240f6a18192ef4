# Copyright (c) mmadc contributors. All rights reserved.
"""The per-scale means with their bootstrap intervals
(mmadc.evaluation.functional.scale_response)."""
import numpy as np
import pytest

from mmadc.evaluation.functional import (bootstrap_means, percentile_interval,
                                         scale_curve)


def test_bootstrap_means_by_hand_and_coverage():
    rng = np.random.default_rng(4)
    values = np.stack([rng.normal(2., 1., 400), rng.normal(-1., .5, 400)], 1)
    stats = bootstrap_means(values, num_resamples=300, seed=3)
    # the same resamples, drawn independently here
    index = np.random.default_rng(3).integers(0, 400, (300, 400))
    for j, (st, true_mean) in enumerate(zip(stats, (2., -1.))):
        assert st['value'] == pytest.approx(values[:, j].mean())
        assert st['n'] == 400
        expected = np.percentile(values[:, j][index].mean(1), [2.5, 97.5])
        np.testing.assert_allclose(st['interval'], expected, rtol=1e-12)
        low, high = st['interval']
        assert low < true_mean < high
        # ~ 2 x 1.96 standard errors wide
        se = values[:, j].std() / np.sqrt(400)
        assert high - low == pytest.approx(3.92 * se, rel=0.2)
    assert bootstrap_means(np.zeros((0, 2)))[0] == dict(
        value=None, interval=None, n=0)
    assert percentile_interval([]) is None


def test_scale_curve_pairs_the_samples():
    rng = np.random.default_rng(0)
    base = rng.normal(1., 0.3, 200)  # a large spread between samples ...
    rates = {
        1.: base,
        0.5: base - 0.05 + rng.normal(0, 0.01, 200),  # ... a small shift
        2.: base + 0.05
    }
    curve = scale_curve(rates, num_resamples=500, seed=1)
    assert curve['scales'] == [0.5, 1., 2.]
    assert [e['scale'] for e in curve['mean']] == [0.5, 1., 2.]
    for entry in curve['mean']:
        assert entry['value'] == pytest.approx(rates[entry['scale']].mean())
    diff = curve['largest_minus_smallest']
    assert diff['scales'] == [2., 0.5]
    assert diff['value'] == pytest.approx((rates[2.] - rates[0.5]).mean())
    # paired: the difference is known to about 0.01 / sqrt(200), far
    # better than the per-scale means (0.3 / sqrt(200))
    assert diff['interval'][0] < 0.1 < diff['interval'][1]
    assert diff['interval'][1] - diff['interval'][0] < 0.01
    assert diff['excludes_zero'] is True
    one = scale_curve({1.: base})
    assert one['largest_minus_smallest']['value'] is None
    with pytest.raises(ValueError, match='same samples'):
        scale_curve({1.: base, 2.: base[:10]})
