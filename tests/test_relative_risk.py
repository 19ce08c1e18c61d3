"""Relative risk (SPEC §6): hand-worked confusion counts, ties, fp = 0, constant maps, (H, W)."""

import numpy as np
import pytest

from ais_jax.explain import compare
from ais_jax.explain.compare import relative_risk, top_region
from ais_jax.report import aim3_tables, paper


def _ramp() -> np.ndarray:
    return np.arange(16, dtype=np.float64).reshape(4, 4)  # top 25 %: the bottom row


def test_top_region_linear_percentile_and_strict_rule():
    # percentile(0..15, 75) = 11.25 (linear): four pixels above it.
    np.testing.assert_array_equal(top_region(_ramp(), 25)[0],
                                  np.arange(16).reshape(4, 4) >= 12)
    # Ties at the threshold are excluded: 10 zeros, three 1s, three 2s -> the 75th percentile
    # is 1, so only the three 2s (3 of 16 pixels, less than 25 %) are in the region.
    tied = np.array([0] * 10 + [1] * 3 + [2] * 3, np.float64).reshape(4, 4)
    region = top_region(tied, 25)[0]
    assert region.sum() == 3 and (tied[region] == 2).all()
    # All top pixels tied with the threshold: an empty region.
    assert not top_region(np.array([0] * 10 + [1] * 6, np.float64).reshape(4, 4), 25).any()


def test_relative_risk_hand_worked():
    heat = np.zeros((4, 4))
    heat[2:, :2] = [[5, 6], [7, 8]]  # CR: rows 2-3, columns 0-1 (threshold 1.25)
    rr = relative_risk(heat, _ramp(), 25)
    # Sal = row 3. tp = (3,0),(3,1); fn = (3,2),(3,3); fp = (2,0),(2,1); tn = the other 10.
    assert (rr.tp[0], rr.fn[0], rr.fp[0], rr.tn[0]) == (2, 2, 2, 10)
    assert rr.rr[0] == pytest.approx((2 / 4) / (2 / 12))  # 3.0
    assert rr.case[0] == "finite"


def test_relative_risk_edge_cases_counted():
    sal = np.stack([_ramp()] * 5)
    heat = np.zeros((5, 4, 4))
    heat[0, 3, 2:] = [2.0, 1.0]  # CR = {(3,2), (3,3)} inside Sal: fp = 0, tp = 2 -> inf
    heat[1] = 1.0  # constant heatmap: CR empty -> NaN
    heat[2, 0, 0] = 3.0  # CR outside Sal: tp = 0 -> RR 0
    heat[3] = _ramp()  # identical maps: fp = 0 -> inf
    heat[4] = _ramp()
    sal[4] = 7.0  # constant saliency: Sal empty -> NaN
    rr = relative_risk(heat, sal, 25)
    assert list(rr.case) == ["inf", "nan_empty_heatmap", "finite", "inf", "nan_empty_saliency"]
    assert np.isposinf(rr.rr[[0, 3]]).all() and np.isnan(rr.rr[[1, 4]]).all()
    assert rr.rr[2] == 0.0 and rr.tp[2] == 0 and rr.fp[2] == 1
    assert rr.counts() == {"finite": 1, "inf": 2, "nan_empty_saliency": 1,
                           "nan_empty_heatmap": 1, "nan_full_saliency": 0}


def _reference_counts(heat: np.ndarray, sal: np.ndarray, p: float) -> tuple:
    """Plain loop: thresholds by np.percentile per image, counts pixel by pixel."""
    t_sal, t_heat = np.percentile(sal, 100 - p), np.percentile(heat, 100 - p)
    tp = fn = fp = tn = 0
    for y in range(heat.shape[0]):
        for x in range(heat.shape[1]):
            s, c = sal[y, x] > t_sal, heat[y, x] > t_heat
            tp += s and c
            fn += s and not c
            fp += c and not s
            tn += not s and not c
    return tp, fn, fp, tn


@pytest.mark.parametrize("p", [5, 10, 15])
def test_vectorised_matches_loop(p):
    rng = np.random.default_rng(p)
    sal = rng.random((6, 9, 13)).round(2)  # rounding makes ties, as 8-bit maps have
    heat = 0.5 * sal + rng.random((6, 9, 13))
    rr = relative_risk(heat.astype(np.float32), sal.astype(np.float32), p)
    for i in range(6):
        tp, fn, fp, tn = _reference_counts(heat[i].astype(np.float32).astype(np.float64),
                                           sal[i].astype(np.float32).astype(np.float64), p)
        assert (rr.tp[i], rr.fn[i], rr.fp[i], rr.tn[i]) == (tp, fn, fp, tn)
        if fp:
            assert rr.rr[i] == pytest.approx((tp / (tp + fn)) / (fp / (fp + tn)), rel=1e-12)


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
def test_non_square_keeps_hw(shape):
    rng = np.random.default_rng(0)
    sal = rng.random(shape)
    heat = rng.random(shape)
    out = compare.compare_maps([heat, heat], [sal, sal])
    direct = relative_risk(heat, sal, 10)
    assert out["rr_10"][0] == direct.rr[0]
    assert out["tp_10"][0] + out["fn_10"][0] + out["fp_10"][0] + out["tn_10"][0] == np.prod(shape)
    with pytest.raises(ValueError, match="swapped"):
        relative_risk(heat, sal.T, 10)
    with pytest.raises(ValueError, match=r"image 0.*one \(H, W\)"):
        compare.compare_maps([heat], [sal.T])


def test_compare_maps_groups_sizes_in_order():
    rng = np.random.default_rng(1)
    shapes = [(8, 12), (12, 8), (8, 12)]
    heat = [rng.random(s) for s in shapes]
    sal = [rng.random(s) for s in shapes]
    out = compare.compare_maps(heat, sal, percents=(10,))
    one_by_one = compare.compare_maps(heat, sal, percents=(10,), chunk=1)
    for key in out:
        np.testing.assert_array_equal(out[key], one_by_one[key])
    for i in range(3):
        assert out["rr_10"][i] == relative_risk(heat[i], sal[i], 10).rr[0]
        assert out["cc"][i] == pytest.approx(np.corrcoef(heat[i].ravel(), sal[i].ravel())[0, 1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="p must be"):
        top_region(np.ones((3, 3)), 100)
    with pytest.raises(ValueError, match="NaN"):
        relative_risk(np.full((3, 3), np.nan), np.ones((3, 3)), 5)
    with pytest.raises(ValueError, match=r"\[n, H, W\]"):
        top_region(np.ones(5), 5)


def test_table1_rows_counts_cases_and_pools():
    def result(rr, case):
        return {"rr_5": np.array(rr), "case_5": np.array(case)}

    results = {
        ("ecoset", "animals"): result([2.0, 4.0, np.inf], ["finite", "finite", "inf"]),
        ("ecoset", "fruits"): result([6.0, np.nan, 8.0],
                                     ["finite", "nan_empty_heatmap", "finite"]),
    }
    rows = aim3_tables.table1_rows(results, percents=(5,))
    by = {r["dataset"]: r for r in rows}
    assert [r["dataset"] for r in rows] == ["animals", "fruits", "all"]
    assert by["animals"]["mean"] == 3.0 and by["animals"]["n_inf"] == 1
    assert by["animals"]["sd"] == pytest.approx(np.std([2.0, 4.0], ddof=1))
    assert by["animals"]["median"] == 4.0  # inf counts as the largest value
    assert by["fruits"]["n_nan_empty_heatmap"] == 1 and by["fruits"]["median"] == 7.0
    assert by["all"]["n"] == 6 and by["all"]["mean"] == 5.0
    assert (by["all"]["n_inf"], by["all"]["n_nan"]) == (1, 1)
    assert (by["animals"]["paper_mean"], by["animals"]["paper_sd"]) == (31.9, 34.5)
    assert by["all"]["paper_mean"] is None  # two of the paper's six datasets: not its "All"
    six = {("ecoset", d): result([1.0], ["finite"]) for d in paper.TABLE1_RR["ecoset"]
           if d != "all"}
    pooled = aim3_tables.table1_rows(six, percents=(5,))[-1]
    assert (pooled["dataset"], pooled["paper_mean"], pooled["paper_sd"]) == ("all", 13.1, 22.0)
    text = aim3_tables.table1_markdown(rows, {"animals": "Animals"})
    assert "| Animals | 3.0 ± 1.4 | 4.0 | 31.9 ± 34.5 | 3 | 1 / 0 |" in text
    assert "| All |" in text


def test_region_covering_everything_is_nan_and_spatial_uses_the_canonical_rr():
    from ais_jax.stats import spatial

    heat = _ramp()
    full = np.ones((1, 4, 4), bool)
    rr = compare.relative_risk_from_regions(full, top_region(heat, 25))
    assert np.isnan(rr.rr[0]) and rr.case[0] == "nan_full_saliency"
    mask = np.zeros((4, 4), bool)
    mask[3] = True
    assert spatial.relative_risk(heat, mask, 25) == np.inf  # CR = the bottom row = the mask
    mask[3, 2:] = False
    mask[2] = True  # region = row 2 and (3,0), (3,1); CR = row 3
    assert spatial.relative_risk(heat, mask, 25) == pytest.approx((2 / 6) / (2 / 10))
    assert np.isnan(spatial.relative_risk(heat, np.ones((4, 4), bool), 25))
    assert np.isnan(spatial.relative_risk(np.ones((4, 4)), mask, 25))
