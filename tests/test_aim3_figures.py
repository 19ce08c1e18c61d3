"""Figure 4 contours: drawn where the regions are, in the image's own (H, W); readable errors."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import Collection

from ais_jax.report import aim3_figures


def _planted(shape, box):
    """A map that is 1 inside ``box = (top, bottom, left, right)`` and a gentle ramp elsewhere."""
    h, w = shape
    m = np.linspace(0, 0.5, h * w).reshape(h, w)
    m[box[0]:box[1], box[2]:box[3]] = 1.0 + np.linspace(0, 0.1, (box[1] - box[0]) * (
        box[3] - box[2])).reshape(box[1] - box[0], box[3] - box[2])
    return m


def _contour_vertices(ax, colour):
    verts = []
    for artist in ax.findobj(Collection):
        colours = artist.get_edgecolor()
        if len(colours) and np.allclose(colours[0][:3], plt.matplotlib.colors.to_rgb(colour)):
            for path in artist.get_paths():
                verts.append(path.vertices)
    return np.concatenate(verts)


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
def test_contours_follow_regions_in_hw(shape):
    h, w = shape
    # 100 x 100 boxes hold more than 5 % of the pixels, so each top-5% region lies inside one.
    sal_box = (h - 110, h - 10, w - 120, w - 20)  # bottom right
    heat_box = (10, 110, 20, 120)  # top left
    sal, heat = _planted(shape, sal_box), _planted(shape, heat_box)
    image = np.zeros((h, w, 3), np.uint8)
    fig = aim3_figures.contour_figure(image, sal, heat, percents=(5,), rr={5: 2.5}, title="x")
    ax = fig.axes[0]
    try:
        # Region pixels (row, col) must be drawn at y = row, x = col, half a pixel outside.
        for colour, (top, bottom, left, right) in ((aim3_figures.SALIENCY_COLOUR, sal_box),
                                                   (aim3_figures.AIS_COLOUR, heat_box)):
            v = _contour_vertices(ax, colour)
            region = np.argwhere(aim3_figures.top_region(sal if colour ==
                                                          aim3_figures.SALIENCY_COLOUR else heat,
                                                          5)[0])
            assert v[:, 0].min() >= region[:, 1].min() - 0.5 - 1e-9
            assert v[:, 0].max() <= region[:, 1].max() + 0.5 + 1e-9
            assert v[:, 1].min() >= region[:, 0].min() - 0.5 - 1e-9
            assert v[:, 1].max() <= region[:, 0].max() + 0.5 + 1e-9
            assert left - 1 <= region[:, 1].min() and region[:, 1].max() < right
            assert top - 1 <= region[:, 0].min() and region[:, 0].max() < bottom
        assert ax.get_xlim() == (-0.5, w - 0.5) and ax.get_ylim() == (h - 0.5, -0.5)
        assert "RR 5%: 2.5" in ax.get_title()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="one \\(H, W\\)"):
        aim3_figures.contour_figure(image, sal.T, heat)


def test_grid_layout_and_special_values():
    rng = np.random.default_rng(0)
    examples = []
    for d, k in (("Animals", 3), ("Fruits", 2)):
        for i in range(k):
            shape = (40, 60) if i % 2 else (60, 40)
            examples.append({"dataset": d, "image_id": f"{d}{i}",
                             "image": rng.integers(0, 255, (*shape, 3), dtype=np.uint8),
                             "saliency": rng.random(shape), "heatmap": np.zeros(shape),
                             "rr": {5: np.nan, 10: np.inf, 15: 1.0}})
    fig = aim3_figures.contour_grid(examples, suptitle="synthetic")
    try:
        assert len(fig.axes) == 6
        assert "RR 5%: NaN  10%: inf  15%: 1.0" in fig.axes[0].get_title()
        assert not fig.axes[5].axison  # Fruits has only two examples
    finally:
        plt.close(fig)


def test_pick_examples_spreads_over_rr():
    rr = np.array([1.0, np.nan, 5.0, np.inf, 3.0, 2.0])
    ids = [f"im{i}" for i in range(6)]
    assert aim3_figures.pick_examples(ids, rr, 3) == [3, 4, 1]
    assert aim3_figures.pick_examples(ids, rr, 10) == [3, 2, 4, 5, 0, 1]
