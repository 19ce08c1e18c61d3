"""Aim 2 figures (the paper's Figures 2 and 3), as functions returning matplotlib Figures."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ais_jax.explain.overlay import overlay
from ais_jax.report import figures
from ais_jax.stats.heatmap_stats import log10_positive

plt = figures.plt  # Agg is selected in ais_jax.report.figures


def _colour(model: str, i: int) -> str:
    return figures.MODEL_COLOURS.get(model.lower(), figures.FALLBACK_COLOURS[i % 3])[1]


def figure2(images: Sequence[np.ndarray], heats: Mapping[str, Sequence[np.ndarray]], *,
            titles: Sequence[str], colormap: str = "jet", image_weight: float = 0.5,
            suptitle: str = "") -> Figure:
    """Example images beside each model's heatmap overlay, with a colour bar.

    Args:
      images: ``k`` uint8 RGB images ``[H, W, 3]``.
      heats: model label -> ``k`` heatmaps ``[H, W]`` already scaled to [0, 1] for display.
      titles: ``k`` row labels (image id, Match).
      colormap: overlay colormap.
      image_weight: weight of the image in the overlays.
      suptitle: figure title (says how the examples were chosen).

    Returns:
      The Figure (rows = images; columns = image, one overlay per model).
    """
    k, models = len(images), list(heats)
    if k == 0:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no example image (no defined heatmap)", ha="center", va="center")
        return fig
    cols = 1 + len(models)
    fig, axes = plt.subplots(k, cols, figsize=(2.8 * cols + 0.6, 2.8 * k), squeeze=False)
    for r in range(k):
        axes[r, 0].imshow(images[r])
        axes[r, 0].set_ylabel(titles[r], fontsize=8)
        for c, model in enumerate(models, start=1):
            axes[r, c].imshow(overlay(images[r], heats[model][r], colormap=colormap,
                                      image_weight=image_weight))
            if r == 0:
                axes[r, c].set_title(f"{model} heatmap", fontsize=10)
        if r == 0:
            axes[r, 0].set_title("image", fontsize=10)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1),
                                            cmap=colormap)
    fig.colorbar(mappable, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02,
                 label="heat (min–max scaled per image)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def figure3(panels: Sequence[dict]) -> Figure:
    """Per dataset: log10 mean-AIS and MAD histograms (models overlaid), Match vs maxEntropy.

    Args:
      panels: one dict per dataset: ``dataset`` (name), ``map_means`` and ``mad`` (model ->
        ``[M]`` / ``[n]``), ``match`` and ``max_entropy`` (``[n]``, or None with one model).

    Returns:
      The Figure (one row per dataset, three columns).
    """
    fig, axes = plt.subplots(len(panels), 3, figsize=(12, 2.9 * len(panels)), squeeze=False)
    for row, p in zip(axes, panels, strict=True):
        for i, (model, means) in enumerate(p["map_means"].items()):
            logs = log10_positive(means)
            row[0].hist(logs, bins=30, alpha=0.5, color=_colour(model, i),
                        label=f"{model} ({logs.size} > 0)")
        row[0].set_xlabel("log10 mean AIS per map (positive means)")
        row[0].set_ylabel(f"{p['dataset']}\nmaps")
        row[0].legend(frameon=False, fontsize=7)
        for i, (model, mad) in enumerate(p["mad"].items()):
            row[1].hist(mad, bins=20, alpha=0.5, color=_colour(model, i), label=model)
        row[1].set_xlabel("per-image MAD of AIS over maps")
        row[1].set_ylabel("images")
        row[1].legend(frameon=False, fontsize=7)
        if p["match"] is None:
            row[2].axis("off")
            row[2].text(0.5, 0.5, "one model: no Match score", ha="center", va="center")
        else:
            ok = np.isfinite(p["match"])
            row[2].scatter(p["max_entropy"][ok], p["match"][ok], s=10, c="#525252")
            x, y = p["max_entropy"][ok], p["match"][ok]
            if ok.sum() > 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
                r = np.corrcoef(x, y)[0, 1]
                row[2].set_title(f"r = {r:.2f}", fontsize=9)
            row[2].set_xlabel("maxEntropy (nats)")
            row[2].set_ylabel("Match")
        for ax in row:
            ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: str | os.PathLike) -> None:
    """Saves ``fig`` as PNG atomically and closes it (`ais_jax.report.figures.save_figure`)."""
    figures.save_figure(fig, path)
