"""Aim 2 statistics against NumPy / scipy on known arrays."""

import numpy as np
import pytest
import scipy.stats

from ais_jax.stats import heatmap_stats as st
from ais_jax.study.aim2 import choose_examples


def test_mad_and_map_means():
    ais = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 4.0]])
    np.testing.assert_allclose(st.image_mad(ais), [1.5, 1.5])
    np.testing.assert_allclose(st.map_mean_ais(ais), [0.5, 1.0, 1.5, 5.0])
    np.testing.assert_allclose(st.log10_positive(np.array([-1.0, 0.0, 0.01, 10.0])), [-2, 1])


def test_entropy_is_natural_log_entropy_of_softmax():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(st.softmax_entropy(logits), scipy.stats.entropy(p, axis=1))
    np.testing.assert_allclose(st.softmax_entropy(np.zeros((1, 10))), [np.log(10)])
    other = rng.standard_normal((5, 3))
    np.testing.assert_allclose(st.max_entropy(logits, other),
                               np.maximum(st.softmax_entropy(logits), st.softmax_entropy(other)))


def test_match_is_pearson_per_image_and_nan_for_constant_maps():
    rng = np.random.default_rng(1)
    a = [rng.random((30, 50)) for _ in range(3)] + [np.zeros((4, 4))]
    b = [x + rng.random(x.shape) for x in a[:3]] + [rng.random((4, 4))]
    m = st.match_scores(a, b)
    for i in range(3):
        assert m[i] == pytest.approx(scipy.stats.pearsonr(a[i].ravel(), b[i].ravel()).statistic)
    assert np.isnan(m[3])


def test_ks_and_match_summary_match_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(50), rng.standard_normal(60) + 0.5
    ref = scipy.stats.ks_2samp(x, y)
    got = st.ks_test(x, y)
    assert got["statistic"] == pytest.approx(ref.statistic)
    assert got["p"] == pytest.approx(ref.pvalue)
    match = np.append(rng.random(20), np.nan)
    ent = rng.random(21)
    d = st.describe_match(match, ent)
    ok = np.isfinite(match)
    r = scipy.stats.pearsonr(match[ok], ent[ok])
    assert d["n"] == 20 and d["n_undefined"] == 1
    assert d["median"] == pytest.approx(np.median(match[ok]))
    assert d["sd"] == pytest.approx(np.std(match[ok], ddof=1))
    assert d["r"] == pytest.approx(r.statistic) and d["p"] == pytest.approx(r.pvalue)


def test_examples_are_highest_median_lowest_match():
    match = np.array([0.1, 0.9, np.nan, 0.5, 0.3, 0.7])
    idx, how = choose_examples(match, 6, 3)
    assert idx == [1, 3, 0] and "median" in how
    assert choose_examples(None, 10, 3)[0] == [0, 4, 9]
