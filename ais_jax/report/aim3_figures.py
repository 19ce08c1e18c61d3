"""Figure 4 analogue: top-p% contours of the saliency map and the AIS heatmap over the image.

Saliency regions are drawn in orange, AIS regions in blue; one line style per p (solid 5 %,
dashed 10 %, dotted 15 %). The regions are `ais_jax.explain.compare.top_region` (strict rule),
so a contour encloses exactly the pixels counted by the relative risk. Image, maps and
contours share one (H, W): the contour of region pixel ``(row, col)`` is drawn at
``x = col, y = row`` over ``imshow``'s pixel centres. Functions return Figures (never shown).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ais_jax.explain.compare import PERCENTS, top_region  # noqa: E402

SALIENCY_COLOUR = "#ff7f0e"  # orange
AIS_COLOUR = "#1f77b4"  # blue
LINESTYLES = ("solid", "dashed", "dotted", "dashdot")
# A thin white halo keeps the contours visible on any image.
HALO = [patheffects.withStroke(linewidth=2.8, foreground="white", alpha=0.8)]
PANEL_WIDTH = 2.8  # inches per grid panel


def _rr_text(rr: Mapping[float, float] | None, percents: Sequence[float]) -> str:
    if not rr:
        return ""
    parts = []
    for p in percents:
        v = rr.get(p, np.nan)
        parts.append(f"{p:g}%: " + ("NaN" if np.isnan(v) else "inf" if np.isinf(v)
                                    else f"{v:.1f}"))
    return "RR " + "  ".join(parts)


def draw_contours(ax: Axes, image: np.ndarray, saliency: np.ndarray, heatmap: np.ndarray, *,
                  percents: Sequence[float] = PERCENTS,
                  rr: Mapping[float, float] | None = None, title: str | None = None) -> None:
    """Draws the image and the top-p% contours of both maps into ``ax``.

    Args:
      ax: the Axes.
      image: ``[H, W, 3]`` uint8 RGB (or float in [0, 1]).
      saliency: ``[H, W]`` saliency map.
      heatmap: ``[H, W]`` AIS heatmap.
      percents: the p to draw (at most four).
      rr: p -> relative risk, printed above the image.
      title: a first title line (e.g. the image id).
    """
    image, saliency, heatmap = np.asarray(image), np.asarray(saliency), np.asarray(heatmap)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be RGB [H, W, 3], got {image.shape}")
    if saliency.shape != image.shape[:2] or heatmap.shape != image.shape[:2]:
        raise ValueError(f"image {image.shape[:2]}, saliency map {saliency.shape} and heatmap "
                         f"{heatmap.shape} must share one (H, W)")
    if len(percents) > len(LINESTYLES):
        raise ValueError(f"at most {len(LINESTYLES)} percentages, got {len(percents)}")
    ax.imshow(image, interpolation="nearest")
    for p, style in zip(percents, LINESTYLES, strict=False):
        for region_of, colour in ((saliency, SALIENCY_COLOUR), (heatmap, AIS_COLOUR)):
            region = top_region(region_of, p)[0].astype(np.float64)
            if region.any():  # an empty region (constant map) has no contour
                contours = ax.contour(region, levels=[0.5], colors=[colour],
                                      linestyles=[style], linewidths=1.4)
                contours.set_path_effects(HALO)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    lines = [t for t in (title, _rr_text(rr, percents)) if t]
    if lines:
        ax.set_title("\n".join(lines), fontsize=8)


def _legend(fig: Figure, percents: Sequence[float]) -> None:
    handles = [Line2D([], [], color=SALIENCY_COLOUR, label="saliency"),
               Line2D([], [], color=AIS_COLOUR, label="AIS heatmap")]
    handles += [Line2D([], [], color="black", linestyle=s, label=f"top {p:g}%")
                for p, s in zip(percents, LINESTYLES, strict=False)]
    ncol = len(handles) if fig.get_figwidth() >= 6 else 3  # narrow single panels: two rows
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False,
               fontsize=8)


def contour_figure(image: np.ndarray, saliency: np.ndarray, heatmap: np.ndarray, *,
                   percents: Sequence[float] = PERCENTS,
                   rr: Mapping[float, float] | None = None, title: str | None = None) -> Figure:
    """One image with both maps' top-p% contours and its RR values (Figure 4, one panel).

    Args:
      image, saliency, heatmap, percents, rr, title: as `draw_contours`.

    Returns:
      The Figure (about 5 inches on the longer side, keeping the image's aspect).
    """
    height, width = np.shape(image)[:2]
    scale = 5.0 / max(height, width)
    fig, ax = plt.subplots(figsize=(max(width * scale, 3.2), height * scale + 1.0),
                           layout="constrained")
    draw_contours(ax, image, saliency, heatmap, percents=percents, rr=rr, title=title)
    _legend(fig, percents)
    return fig


def contour_grid(examples: Sequence[Mapping], *, percents: Sequence[float] = PERCENTS,
                 suptitle: str | None = None) -> Figure:
    """A grid of contour panels: one row per dataset, its examples side by side (Figure 4).

    Args:
      examples: dicts with ``dataset`` (row label), ``image_id``, ``image``, ``saliency``,
        ``heatmap`` and ``rr`` (p -> RR), as `draw_contours`; rows in order of first appearance.
      percents: the p to draw.
      suptitle: a title over the grid.

    Returns:
      The Figure.
    """
    if not examples:
        raise ValueError("contour_grid needs at least one example")
    rows = list(dict.fromkeys(e["dataset"] for e in examples))
    cols = max(sum(e["dataset"] == r for e in examples) for r in rows)
    aspect = float(np.median([np.shape(e["image"])[0] / np.shape(e["image"])[1]
                              for e in examples]))
    row_height = PANEL_WIDTH * aspect + 0.5  # the image and two title lines
    legend_height = 0.45
    fig, axes = plt.subplots(len(rows), cols, squeeze=False, layout="constrained", figsize=(
        PANEL_WIDTH * cols + 0.3, row_height * len(rows) + legend_height + (0.3 if suptitle
                                                                            else 0.0)))
    for r, dataset in enumerate(rows):
        mine = [e for e in examples if e["dataset"] == dataset]
        for c in range(cols):
            ax = axes[r, c]
            if c >= len(mine):
                ax.axis("off")
                continue
            e = mine[c]
            draw_contours(ax, e["image"], e["saliency"], e["heatmap"], percents=percents,
                          rr=e.get("rr"), title=str(e["image_id"]))
            if c == 0:
                ax.set_ylabel(str(dataset), fontsize=9)
    _legend(fig, percents)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def pick_examples(image_ids: Sequence[str], rr: np.ndarray, k: int) -> list[int]:
    """k images spread over the range of one RR (highest, lowest and between), for the grid.

    Args:
      image_ids: the dataset's ids (ties in RR are broken by id, for reproducibility).
      rr: ``[n]`` relative risk at one p (NaN last, inf first).
      k: how many.

    Returns:
      Indices into the dataset, highest RR first.
    """
    rr = np.asarray(rr, np.float64)
    key = np.where(np.isnan(rr), -np.inf, rr)
    order = sorted(range(len(image_ids)), key=lambda i: (-key[i], str(image_ids[i])))
    if k >= len(order):
        return order
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, max(k, 1))).astype(int))
    return [order[i] for i in picks]
