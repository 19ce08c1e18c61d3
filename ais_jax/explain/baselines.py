"""Null baselines for the heatmap-vs-saliency comparison, and paired tests against them (SPEC §11).

An RR of 5 means little on its own: saliency maps and heatmaps both favour the image centre and
the object. Two baselines take the AIS heatmap's place, so AIS can be judged against them:

* centre bias (`centre_bias`): an isotropic Gaussian at the image centre whose SD is a fixed
  fraction of the shorter side (`CENTRE_BIAS_SD` = 1/4 by default);
* mismatched pairs (`mismatched_pairs`, `mismatched_saliency`): the heatmap of image i against
  the saliency map of image j != i of the same dataset, j from a seeded random derangement, the
  map resized to i's (H, W) (OpenCV-exact bilinear, aspect ratio not kept: it is stretched).

`paired_test` compares AIS with a baseline over images (Wilcoxon signed-rank).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.stats

from ais_jax.data.resize import interpolation_matrix, resize_bilinear

# SD of the centre-bias Gaussian, as a fraction of the image's shorter side.
CENTRE_BIAS_SD = 0.25


def centre_bias(shape: tuple[int, int], sd_fraction: float = CENTRE_BIAS_SD) -> np.ndarray:
    """An isotropic Gaussian centred on the image: a saliency-free stand-in for a heatmap.

    ``g(y, x) = exp(-((y - (H-1)/2)² + (x - (W-1)/2)²) / (2 σ²))`` with ``σ = sd_fraction ·
    min(H, W)``, pixel centres at integer coordinates; peak 1 at the centre.

    Args:
      shape: ``(H, W)``.
      sd_fraction: σ relative to the shorter side.

    Returns:
      ``[H, W]`` float64.
    """
    height, width = (int(s) for s in shape)
    if height < 1 or width < 1:
        raise ValueError(f"centre_bias: shape must be a positive (H, W), got {shape}")
    if not sd_fraction > 0:
        raise ValueError(f"centre_bias: sd_fraction must be positive, got {sd_fraction}")
    sigma = sd_fraction * min(height, width)
    dy = np.arange(height, dtype=np.float64) - (height - 1) / 2
    dx = np.arange(width, dtype=np.float64) - (width - 1) / 2
    return np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma**2))


def mismatched_pairs(n: int, seed: int) -> np.ndarray:
    """A seeded random derangement: image i is paired with ``partner[i] != i``.

    A uniformly random cyclic order of the n images (``np.random.default_rng(seed)``), each
    image paired with the next one in it, so no image is paired with itself.

    Args:
      n: number of images (at least 2).
      seed: the generator's seed; the same seed gives the same pairs.

    Returns:
      ``[n]`` int64 ``partner``.
    """
    if n < 2:
        raise ValueError(f"mismatched pairs need at least 2 images, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    partner = np.empty(n, np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def mismatched_saliency(saliency: Sequence[np.ndarray], partner: np.ndarray) -> list[np.ndarray]:
    """Saliency map of image ``partner[i]`` resized to image i's (H, W), for every i.

    Args:
      saliency: ``n`` maps ``[H_j, W_j]``.
      partner: ``[n]`` from `mismatched_pairs`.

    Returns:
      ``n`` maps, the i-th of shape ``saliency[i].shape``, in the partner's precision: a map of
      the same shape as it is; a resized float64 map in float64 (the same OpenCV weights,
      applied with NumPy), any other through the float32 resize kernel.
    """
    partner = np.asarray(partner)
    if partner.shape != (len(saliency),):
        raise ValueError(f"partner has shape {partner.shape}, expected ({len(saliency)},)")
    out = []
    for i, j in enumerate(partner):
        src, shape = np.asarray(saliency[int(j)]), np.shape(saliency[i])
        if src.shape == shape:
            out.append(src)
        elif src.dtype == np.float64:  # never rounded to float32 on the way
            rows = interpolation_matrix(src.shape[0], shape[0]).astype(np.float64)
            cols = interpolation_matrix(src.shape[1], shape[1]).astype(np.float64)
            out.append(rows @ src @ cols.T)
        else:
            out.append(np.asarray(resize_bilinear(src, shape)))
    return out


def paired_test(ais: np.ndarray, baseline: np.ndarray) -> dict:
    """Is the AIS value higher than the baseline's, image by image? (Wilcoxon signed-rank.)

    Pairs where either value is NaN are dropped (counted in ``n_nan``). Pairs with an infinite
    value (RR with fp = 0) cannot enter the signed-rank test (their difference has no rank
    magnitude): they are dropped from it and counted in ``n_inf``, but ``wins``/``losses``/
    ``ties`` count every pair without a NaN (inf beats any finite value; inf vs inf ties).
    The test is ``scipy.stats.wilcoxon(ais - baseline)`` on the finite pairs, two-sided,
    zero differences dropped (``zero_method='wilcox'``); it is left NaN when fewer than 2
    non-zero differences remain.

    Args:
      ais: ``[n]`` per-image values with the AIS heatmap.
      baseline: ``[n]`` the same images' values with the baseline in its place.

    Returns:
      dict: ``n`` (pairs), ``n_test`` (finite pairs), ``n_inf``, ``n_nan``, ``wins``,
      ``losses``, ``ties``, ``median_diff`` and ``mean_diff`` (AIS - baseline over the finite
      pairs), ``statistic``, ``p``, ``test``.
    """
    ais, baseline = np.asarray(ais, np.float64), np.asarray(baseline, np.float64)
    if ais.ndim != 1 or ais.shape != baseline.shape:
        raise ValueError(f"paired_test expects two [n] arrays, got {ais.shape} and "
                         f"{baseline.shape}")
    nan = np.isnan(ais) | np.isnan(baseline)
    finite = np.isfinite(ais) & np.isfinite(baseline)
    compared = ~nan
    a, b = ais[compared], baseline[compared]
    diff = ais[finite] - baseline[finite]
    statistic = p = np.nan
    if np.count_nonzero(diff) >= 2:
        result = scipy.stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
        statistic, p = float(result.statistic), float(result.pvalue)
    return {
        "n": int(ais.size),
        "n_test": int(finite.sum()),
        "n_inf": int((compared & ~finite).sum()),
        "n_nan": int(nan.sum()),
        "wins": int(np.sum(a > b)),
        "losses": int(np.sum(a < b)),
        "ties": int(np.sum(a == b)),
        "median_diff": float(np.median(diff)) if diff.size else np.nan,
        "mean_diff": float(np.mean(diff)) if diff.size else np.nan,
        "statistic": statistic,
        "p": p,
        "test": "scipy.stats.wilcoxon, two-sided, zero_method='wilcox', finite pairs only",
    }
