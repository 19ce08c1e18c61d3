"""The planted-region demo's pieces: images and masks, grid masks, and the recovery measures.

The whole demo (two full-size synthetic VGG-16s) takes over a minute on 2 cores, beyond this
suite's budget; its measured numbers are in the README. These tests pin what it measures.
"""

import numpy as np
import pytest

from ais_jax.stats.spatial import mass_share, relative_risk, top_region
from ais_jax.study import aim2_demo


def test_planted_images_have_their_rectangle_mask_and_grid_shares():
    rng = np.random.default_rng(0)
    img, mask = aim2_demo.draw_planted(rng, 96, 128, (0.3, 0.4))
    assert img.size == (128, 96) and img.mode == "RGB" and mask.shape == (96, 128)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # one filled rectangle
    assert 0.3 * 96 - 1 <= rows.size <= 0.4 * 96 + 1
    cells = aim2_demo.grid_masks(mask[None])
    assert cells.shape == (1, 6, 8)
    np.testing.assert_allclose(cells.mean(), mask.mean())
    np.testing.assert_allclose(cells[0, 2, 3], mask[32:48, 48:64].mean())


def test_relative_risk_follows_the_spec_definition():
    rng = np.random.default_rng(1)
    heat = rng.random((40, 50))
    mask = np.zeros((40, 50), bool)
    mask[5:20, 10:30] = True
    for p in (5, 10, 15):
        top = heat > np.percentile(heat, 100 - p)
        tp, fn = (top & mask).sum(), (~top & mask).sum()
        fp, tn = (top & ~mask).sum(), (~top & ~mask).sum()
        assert relative_risk(heat, mask, p) == pytest.approx((tp / (tp + fn)) / (fp / (fp + tn)))
        np.testing.assert_array_equal(top_region(heat, p), top)
    assert np.isnan(relative_risk(np.ones((40, 50)), mask, 10))  # constant map: empty top region
    peaked = np.zeros((40, 50))
    peaked[10, 20] = 1.0
    assert relative_risk(peaked, mask, 5) == np.inf  # no top pixel outside the region
    assert mass_share(heat, mask) == pytest.approx(heat[mask].sum() / heat.sum())
    assert np.isnan(mass_share(np.zeros((3, 3)), np.ones((3, 3), bool)))


def test_spatial_recovery_is_far_above_chance_for_a_heatmap_on_the_region():
    rng = np.random.default_rng(2)
    masks = np.zeros((4, 30, 40), bool)
    masks[:, 5:15, 10:25] = True
    on_region = [m * 1.0 + 0.01 * rng.random(m.shape) for m in masks]
    rec = aim2_demo.spatial_recovery(on_region, masks)
    assert rec["chance"] == pytest.approx(masks[0].mean())
    assert rec["mass_in_region"] > 0.9 and rec["images_above_chance"] == 4
    assert rec["rr10_inf"] == 4  # every top-10% pixel is inside the region
    flat = aim2_demo.spatial_recovery([rng.random((30, 40)) for _ in range(4)], masks)
    assert flat["mass_in_region"] == pytest.approx(flat["chance"], abs=0.03)
    assert flat["rr10_mean"] == pytest.approx(1.0, abs=0.6)
