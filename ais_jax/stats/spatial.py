"""How much of a heatmap falls on a known region: mass share and relative risk (SPEC §6 rule)."""

from __future__ import annotations

import numpy as np

from ais_jax.explain import compare


def mass_share(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative heatmap's total inside ``mask`` (NaN for an all-zero map).

    Args:
      heat: ``[H, W]`` non-negative heatmap.
      mask: ``[H, W]`` bool region.
    """
    heat = np.asarray(heat, np.float64)
    total = heat.sum()
    return float(heat[np.asarray(mask, bool)].sum() / total) if total > 0 else float("nan")


def top_region(heat: np.ndarray, p: float) -> np.ndarray:
    """Pixels strictly above the ``100 - p`` percentile (the released rule: ties excluded)."""
    return compare.top_region(heat, p)[0]


def relative_risk(heat: np.ndarray, mask: np.ndarray, p: float) -> float:
    """``RR = P(top p% | region) / P(top p% | outside)``; chance = 1.

    The canonical RR (`ais_jax.explain.compare.relative_risk_from_regions`) with ``mask`` as
    Sal: ``inf`` when no outside pixel is in the top p% (fp = 0) and some inside one is; NaN
    when the top region is empty (e.g. a constant map) or the region covers everything/nothing.

    Args:
      heat: ``[H, W]`` heatmap.
      mask: ``[H, W]`` bool region (plays the role of Sal in SPEC §6).
      p: percentage of pixels, e.g. 5, 10, 15.
    """
    mask = np.asarray(mask, bool)
    return float(compare.relative_risk_from_regions(mask[None], top_region(heat, p)[None]).rr[0])
