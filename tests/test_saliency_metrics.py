"""CC, SIM, KLD, AUC vs plain NumPy transcriptions of the MIT definitions; the null baselines."""

import math

import numpy as np
import pytest
import scipy.stats

from ais_jax.data.resize import interpolation_matrix, resize_bilinear
from ais_jax.explain import baselines, compare

EPS = 2.2204e-16


def _maps(seed, n=4, shape=(7, 11)):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)) ** 2, rng.random((n, *shape))


def _ref_cc(p, q):
    p, q = p.ravel(), q.ravel()
    pz = (p - p.mean()) / p.std()
    qz = (q - q.mean()) / q.std()
    return float(np.mean(pz * qz))


def _ref_sim(p, q, min_max=True):
    if min_max:
        p = (p - p.min()) / (p.max() - p.min())
        q = (q - q.min()) / (q.max() - q.min())
    p, q = p / p.sum(), q / q.sum()
    return float(sum(min(a, b) for a, b in zip(p.ravel(), q.ravel(), strict=True)))


def _ref_kld(p, q):
    p, q = p / p.sum(), q / q.sum()
    return float(sum(b * math.log(EPS + b / (a + EPS))
                     for a, b in zip(p.ravel(), q.ravel(), strict=True)))


def _ref_auc(p, pos):
    """Every (positive, negative) pixel pair: 1 if the positive is higher, 1/2 if tied."""
    hi, lo = p[pos], p[~pos]
    score = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in hi for b in lo)
    return score / (hi.size * lo.size)


@pytest.mark.parametrize("seed", [0, 1])
def test_cc_sim_kld_against_transcriptions(seed):
    heat, sal = _maps(seed)
    cc, sim, kld = compare.cc(heat, sal), compare.sim(heat, sal), compare.kld(heat, sal)
    sim_plain = compare.sim(heat, sal, min_max=False)
    for i in range(heat.shape[0]):
        assert cc[i] == pytest.approx(_ref_cc(heat[i], sal[i]), abs=1e-12)
        assert sim[i] == pytest.approx(_ref_sim(heat[i], sal[i]), abs=1e-12)
        assert sim_plain[i] == pytest.approx(_ref_sim(heat[i], sal[i], False), abs=1e-12)
        assert kld[i] == pytest.approx(_ref_kld(heat[i], sal[i]), abs=1e-12)
    assert not np.allclose(sim, sim_plain)  # the min-max step matters for positive maps
    # Identical maps: CC 1, SIM 1, KLD 0.
    assert compare.cc(sal, sal) == pytest.approx(1.0)
    assert compare.sim(sal, sal) == pytest.approx(1.0)
    assert compare.kld(sal, sal) == pytest.approx(0.0, abs=1e-12)


def test_metrics_undefined_cases_are_nan():
    heat, sal = _maps(2, n=2)
    heat[0] = 0.0  # an all-zero heatmap (no positive AIS)
    assert np.isnan(compare.cc(heat, sal)[0]) and np.isfinite(compare.cc(heat, sal)[1])
    assert np.isnan(compare.sim(heat, sal)[0]) and np.isnan(compare.kld(heat, sal)[0])
    heat[1, 0, 0] = -1.0  # not a distribution: KLD shifts it to a minimum of 0, and says so
    assert compare.kld(heat, sal)[1] == pytest.approx(_ref_kld(heat[1] + 1.0, sal[1]), abs=1e-12)
    assert list(compare.kld_shifted(heat, sal)) == [False, True]
    assert np.isnan(compare.sim(heat, sal, min_max=False)[1])
    assert np.isfinite(compare.sim(heat, sal)[1])


@pytest.mark.parametrize("p", [5, 15])
def test_auc_against_pair_count(p):
    rng = np.random.default_rng(p)
    heat = rng.integers(0, 6, (3, 6, 9)).astype(np.float64)  # many ties
    sal = rng.random((3, 6, 9))
    pos = compare.top_region(sal, p)
    got = compare.auc(heat, pos)
    for i in range(3):
        assert got[i] == pytest.approx(_ref_auc(heat[i], pos[i]), abs=1e-12)
    # And the same as scipy's Mann-Whitney U over |pos| |neg|.
    u = scipy.stats.mannwhitneyu(heat[0][pos[0]], heat[0][~pos[0]]).statistic
    assert got[0] == pytest.approx(u / (pos[0].sum() * (~pos[0]).sum()))
    assert np.isnan(compare.auc(heat[:1], np.zeros_like(pos[:1])))[0]


def test_centre_bias_closed_form():
    for shape in [(5, 8), (300, 500), (500, 300)]:
        g = baselines.centre_bias(shape, 0.2)
        assert g.shape == shape
        h, w = shape
        sigma = 0.2 * min(h, w)
        for y, x in [(0, 0), (h // 2, w // 2), (h - 1, 1), (2, w - 1)]:
            d2 = (y - (h - 1) / 2) ** 2 + (x - (w - 1) / 2) ** 2
            assert g[y, x] == pytest.approx(math.exp(-d2 / (2 * sigma * sigma)), rel=1e-12)
        assert np.unravel_index(np.argmax(g), shape) == ((h - 1) // 2, (w - 1) // 2)
        np.testing.assert_array_equal(g, g[::-1, ::-1])
    assert baselines.centre_bias((4, 6)).max() < 1.0  # even sizes: the peak lies between pixels
    with pytest.raises(ValueError, match="sd_fraction"):
        baselines.centre_bias((4, 4), 0.0)


def test_mismatched_pairs_seeded_derangement():
    a = baselines.mismatched_pairs(50, seed=3)
    np.testing.assert_array_equal(a, baselines.mismatched_pairs(50, seed=3))
    assert not np.array_equal(a, baselines.mismatched_pairs(50, seed=4))
    assert sorted(a) == list(range(50)) and (a != np.arange(50)).all()
    assert (baselines.mismatched_pairs(2, seed=0) == [1, 0]).all()
    with pytest.raises(ValueError, match="at least 2"):
        baselines.mismatched_pairs(1, seed=0)


def test_mismatched_saliency_resized_to_own_hw():
    rng = np.random.default_rng(0)
    sal = [rng.random((30, 50)), rng.random((50, 30)), rng.random((30, 50))]
    partner = np.array([1, 2, 0])
    out = baselines.mismatched_saliency(sal, partner)
    assert [m.shape for m in out] == [(30, 50), (50, 30), (30, 50)]
    # float64 maps stay float64: resized with the same OpenCV weights in float64 (the float32
    # kernel agrees to float32 rounding), and a map of the right shape is used as given.
    assert all(m.dtype == np.float64 for m in out)
    rows = interpolation_matrix(50, 30).astype(np.float64)
    cols = interpolation_matrix(30, 50).astype(np.float64)
    np.testing.assert_allclose(out[0], rows @ sal[1] @ cols.T, rtol=1e-14)
    np.testing.assert_allclose(out[0], np.asarray(resize_bilinear(sal[1], (30, 50))), atol=1e-6)
    np.testing.assert_array_equal(out[2], sal[0])
    out32 = baselines.mismatched_saliency([m.astype(np.float32) for m in sal], partner)
    np.testing.assert_array_equal(out32[0], np.asarray(resize_bilinear(sal[1].astype(np.float32),
                                                                      (30, 50))))


def test_paired_test_handles_inf_and_nan():
    rng = np.random.default_rng(0)
    ais = rng.random(30) + 0.3
    base = rng.random(30)
    ais[0], base[1], ais[2] = np.inf, np.nan, np.nan
    base[3] = np.inf
    out = baselines.paired_test(ais, base)
    ok = np.isfinite(ais) & np.isfinite(base)
    ref = scipy.stats.wilcoxon(ais[ok] - base[ok])
    assert (out["n"], out["n_test"], out["n_inf"], out["n_nan"]) == (30, 26, 2, 2)
    assert out["p"] == pytest.approx(ref.pvalue) and out["statistic"] == ref.statistic
    valid = ~(np.isnan(ais) | np.isnan(base))
    assert out["wins"] == int(np.sum(ais[valid] > base[valid]))
    assert out["wins"] + out["losses"] + out["ties"] == 28
    assert np.isnan(baselines.paired_test(np.ones(4), np.ones(4))["p"])
