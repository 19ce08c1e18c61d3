"""Folds match the released code's legacy shuffling; paired statistics match scipy and hand math."""

import numpy as np
import pytest
import scipy.stats

from ais_jax.engine import crossval


@pytest.mark.parametrize("seed", crossval.LEGACY_SEEDS)
def test_legacy_folds_match_the_released_recipe(seed):
    # The released code: np.random.seed(s); shuffle(arange(n)); reshape(5, -1).
    np.random.seed(seed)
    idx = np.arange(120)
    np.random.shuffle(idx)
    expected = idx.reshape(5, -1)
    folds = crossval.legacy_folds(120, seed)
    assert len(folds) == 5
    for got, want in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_legacy_folds_array_split_when_k_does_not_divide_n():
    np.random.seed(333)
    idx = np.arange(50)
    np.random.shuffle(idx)
    folds = crossval.legacy_folds(50, 333, k=3)
    assert [f.size for f in folds] == [17, 17, 16]
    np.testing.assert_array_equal(np.concatenate(folds), idx)


def test_legacy_folds_restore_global_rng_state():
    np.random.seed(5)
    before = np.random.random(3)
    np.random.seed(5)
    crossval.legacy_folds(120, 111)
    np.testing.assert_array_equal(np.random.random(3), before)


def test_cv_folds_partition_the_images():
    folds = crossval.cv_folds(50, (111, 222), k=5)
    assert [(f.seed, f.index) for f in folds] == [(s, i) for s in (111, 222) for i in range(5)]
    for f in folds:
        assert np.intersect1d(f.train, f.test).size == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([f.train, f.test])), np.arange(50))
    for seed in (111, 222):
        tests = np.concatenate([f.test for f in folds if f.seed == seed])
        np.testing.assert_array_equal(np.sort(tests), np.arange(50))


@pytest.mark.parametrize("n, k", [(3, 5), (10, 1)])
def test_legacy_folds_reject_impossible_splits(n, k):
    with pytest.raises(ValueError, match=f"n={n}"):
        crossval.legacy_folds(n, 111, k)


def test_paired_stats_against_scipy_and_hand_computation():
    full = np.array([0.40, 0.35, 0.50, 0.42, 0.38, 0.45])
    retained = np.array([0.46, 0.37, 0.55, 0.49, 0.37, 0.52])
    s = crossval.paired_stats(full, retained)
    diff = retained - full  # [0.06, 0.02, 0.05, 0.07, -0.01, 0.07]
    sd = np.sqrt(np.sum((diff - diff.mean()) ** 2) / 5)
    assert s["n"] == 6
    assert s["mean_full"] == pytest.approx(2.50 / 6)
    assert s["mean_retained"] == pytest.approx(2.76 / 6)
    assert s["mean_diff"] == pytest.approx(0.26 / 6)
    assert s["sd_diff"] == pytest.approx(sd)
    assert s["se_paired"] == pytest.approx(sd / np.sqrt(12))  # Loftus-Masson: SD / sqrt(2N)
    assert s["se_full"] == pytest.approx(np.std(full, ddof=1) / np.sqrt(6))
    t = diff.mean() / (sd / np.sqrt(6))
    assert s["t"] == pytest.approx(t)
    assert s["p"] == pytest.approx(2 * scipy.stats.t.sf(abs(t), df=5))
    ref = scipy.stats.ttest_rel(retained, full)
    assert s["t"] == pytest.approx(ref.statistic) and s["p"] == pytest.approx(ref.pvalue)
    assert "sqrt(2 N)" in s["se_formula"]


def test_paired_stats_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        crossval.paired_stats(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="at least 2"):
        crossval.paired_stats(np.zeros(1), np.zeros(1))
