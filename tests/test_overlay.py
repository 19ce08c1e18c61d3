"""Overlays: RGB in and out, (H, W) kept, colormap and weight as documented."""

import matplotlib
import numpy as np
import pytest

from ais_jax.explain.overlay import colorize, overlay


def test_pure_red_image_stays_red_in_rgb():
    red = np.zeros((30, 50, 3), np.uint8)
    red[..., 0] = 255
    # jet(1) = (0.5, 0, 0): 0.5 * 255 + 0.5 * 127.5 = 191 in R; with BGR it would be blue.
    heat = np.ones((30, 50), np.float32)
    out = overlay(red, heat)
    assert out.shape == (30, 50, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 191).all() and not out[..., 1].any() and not out[..., 2].any()
    np.testing.assert_array_equal(overlay(red, heat, image_weight=1.0), red)


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
def test_overlay_is_the_documented_blend_and_keeps_hw(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    heat = rng.random(shape).astype(np.float32)
    out = overlay(img, heat, colormap="viridis", image_weight=0.3)
    assert out.shape == (*shape, 3)
    colour = matplotlib.colormaps["viridis"](heat.astype(np.float64))[..., :3] * 255
    ref = np.clip(np.floor(0.3 * img + 0.7 * colour + 0.5), 0, 255)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_overlay_rejects_bad_input():
    img = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        overlay(img, np.zeros((6, 4)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        overlay(img, np.full((4, 6), 2.0))
    with pytest.raises(ValueError, match="RGB"):
        overlay(img[..., 0], np.zeros((4, 6)))
    with pytest.raises(ValueError, match="colormap"):
        colorize(np.zeros((4, 6)), "no_such_map")
