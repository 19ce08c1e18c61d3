"""Heatmaps (SPEC §5) against a float64 NumPy double loop and OpenCV's bilinear resize."""

import json

import cv2
import numpy as np
import pytest

from ais_jax.explain import heatmaps as hm


def _reference_heatmap(ais_i: np.ndarray, acts_i: np.ndarray) -> np.ndarray:
    """SPEC §5 written out: clip, normalise, weighted sum, one map at a time (float64)."""
    w = np.maximum(ais_i.astype(np.float64), 0.0)
    total = w.sum()
    h, wd, m = acts_i.shape
    heat = np.zeros((h, wd))
    if total == 0:
        return heat
    for y in range(h):
        for x in range(wd):
            heat[y, x] = sum(w[k] / total * float(acts_i[y, x, k]) for k in range(m))
    return heat


def _reference_resize(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """OpenCV INTER_LINEAR semantics (half-pixel centres, edge clamp), float64 double loop."""
    in_h, in_w = x.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        sy = min(max((i + 0.5) * in_h / out_h - 0.5, 0.0), in_h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, in_h - 1), sy - y0
        for j in range(out_w):
            sx = min(max((j + 0.5) * in_w / out_w - 0.5, 0.0), in_w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, in_w - 1), sx - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * x[y0, x0] + fx * x[y0, x1])
                         + fy * ((1 - fx) * x[y1, x0] + fx * x[y1, x1]))
    return out


@pytest.mark.parametrize("grid, original", [((14, 14), (300, 300)), ((14, 23), (300, 500)),
                                            ((23, 14), (500, 300))])
def test_heatmaps_match_the_double_loop_and_opencv(grid, original):
    rng = np.random.default_rng(0)
    n, m = 3, 24
    acts = np.maximum(rng.standard_normal((n, *grid, m)), 0).astype(np.float32)
    ais = (rng.standard_normal((n, m)) * 1e-3).astype(np.float32)
    ais[2] = -np.abs(ais[2])  # no positive AIS: undefined
    maps = hm.compute_heatmaps(ais, acts, ["a.png", "b.png", "c.png"], [original] * n)
    assert maps.grid.shape == (n, *grid)
    assert maps.defined.tolist() == [True, True, False]
    assert maps.undefined_ids == ["c.png"]
    for i in range(n):
        ref = _reference_heatmap(ais[i], acts[i])
        np.testing.assert_allclose(maps.grid[i], ref, rtol=1e-5, atol=1e-7)
        up = maps.original(i)
        assert up.shape == original
        ref_up = _reference_resize(ref, *original)
        np.testing.assert_allclose(up, ref_up, rtol=1e-5, atol=1e-6)
        # OpenCV itself rounds sample positions to float32: agreement to ~1e-4 of the range.
        cv = cv2.resize(ref, original[::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(up, cv, atol=2e-4 * max(ref.max(), 1e-12))
    assert not maps.original(2).any()  # zeros, no NaN from 0 / 0


def test_clipping_ignores_negative_ais_and_weights_sum_to_one():
    ais = np.array([[0.5, -10.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    w, defined = hm.heatmap_weights(ais)
    np.testing.assert_array_equal(np.asarray(w), [[0.5, 0, 0.5, 0], [0, 0, 0, 0]])
    assert np.asarray(defined).tolist() == [True, False]


def test_grid_heatmaps_traces_once_per_shape_and_rejects_mismatches():
    rng = np.random.default_rng(1)
    acts = rng.random((4, 5, 6, 8)).astype(np.float32)
    ais = rng.standard_normal((4, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"\[n, M\]"):
        hm.grid_heatmaps(ais[:, :7], acts)
    before = hm.grid_heatmaps._cache_size()
    hm.grid_heatmaps(ais, acts)
    hm.grid_heatmaps(ais * 2, acts + 1)
    assert hm.grid_heatmaps._cache_size() == before + 1


def test_upsample_batches_like_single_maps_and_minmax_is_separate():
    rng = np.random.default_rng(2)
    grid = rng.random((3, 14, 18)).astype(np.float32) * 5
    batch = hm.upsample(grid, (300, 388))
    for i in range(3):
        np.testing.assert_allclose(batch[i], hm.upsample(grid[i], (300, 388)), rtol=1e-6)
    scaled = hm.minmax_scale(batch)
    assert scaled.min() == 0 and scaled.max() == pytest.approx(1)
    assert batch.max() > 1  # the raw maps are not rescaled
    assert not hm.minmax_scale(np.zeros((4, 4))).any()
    each = hm.upsample_each(grid, [(28, 36), (300, 388), (28, 36)], chunk=1)
    assert [e.shape for e in each] == [(28, 36), (300, 388), (28, 36)]
    np.testing.assert_allclose(each[1], batch[1], rtol=1e-6)


def test_read_heatmaps_round_trip_and_missing_file(tmp_path):
    rng = np.random.default_rng(3)
    maps = hm.compute_heatmaps(rng.standard_normal((2, 8)).astype(np.float32),
                               rng.random((2, 3, 3, 8)).astype(np.float32), ["x.png", "y.png"],
                               [(30, 30), (30, 30)])
    with pytest.raises(FileNotFoundError, match="per_image_ais.npy"):
        hm.read_heatmaps(tmp_path)
    np.save(tmp_path / hm.AIS_FILE, maps.ais)
    np.save(tmp_path / hm.GRID_FILE, maps.grid)
    (tmp_path / hm.IDS_FILE).write_text(json.dumps(
        {"image_ids": list(maps.image_ids), "sizes": [[30, 30]] * 2,
         "undefined": maps.undefined_ids}))
    back = hm.read_heatmaps(tmp_path)
    np.testing.assert_array_equal(back.grid, maps.grid)
    assert back.defined.tolist() == maps.defined.tolist() and back.sizes == maps.sizes
