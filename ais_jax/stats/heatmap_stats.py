"""Descriptive statistics of per-image AIS and heatmaps (SPEC §5): MAD, KS, Match, maxEntropy."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.special
import scipy.stats


def map_mean_ais(ais: np.ndarray) -> np.ndarray:
    """Mean AIS of each map over images: ``[n, M]`` -> ``[M]`` float64."""
    return np.asarray(ais, np.float64).mean(axis=0)


def image_mad(ais: np.ndarray) -> np.ndarray:
    """Mean absolute deviation of each image's AIS over the maps: ``[n, M]`` -> ``[n]``.

    ``MAD_i = mean_k |AIS_ik - mean_k AIS_ik|``.
    """
    ais = np.asarray(ais, np.float64)
    return np.abs(ais - ais.mean(axis=1, keepdims=True)).mean(axis=1)


def log10_positive(x: np.ndarray) -> np.ndarray:
    """``log10`` of the positive entries (the others have no logarithm and are dropped)."""
    x = np.asarray(x, np.float64)
    return np.log10(x[x > 0])


def ks_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp, two-sided, exact/auto).

    Returns:
      ``{'statistic', 'p', 'n_a', 'n_b'}``; NaNs when a sample is empty.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        return {"statistic": float("nan"), "p": float("nan"), "n_a": a.size, "n_b": b.size}
    res = scipy.stats.ks_2samp(a, b)
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "n_a": int(a.size),
            "n_b": int(b.size)}


def pearson_maps(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps of one shape (float64); NaN if either is constant."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"pearson_maps: shapes differ, {np.shape(a)} vs {np.shape(b)}")
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def match_scores(maps_a: Sequence[np.ndarray], maps_b: Sequence[np.ndarray]) -> np.ndarray:
    """Match score per image: Pearson between two models' heatmaps at the original size.

    Args:
      maps_a, maps_b: ``n`` heatmaps each, ``[H_i, W_i]``, pairwise of one shape.

    Returns:
      ``[n]`` float64; NaN where a heatmap is constant (e.g. undefined, all zero).
    """
    if len(maps_a) != len(maps_b):
        raise ValueError(f"match_scores: {len(maps_a)} vs {len(maps_b)} heatmaps")
    return np.array([pearson_maps(a, b) for a, b in zip(maps_a, maps_b, strict=True)], np.float64)


def softmax_entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy (natural log) of softmax(logits) per row: ``[n, C]`` -> ``[n]`` float64."""
    logits = np.asarray(logits, np.float64)
    logp = scipy.special.log_softmax(logits, axis=-1)
    return -(np.exp(logp) * logp).sum(axis=-1)


def max_entropy(logits_a: np.ndarray, logits_b: np.ndarray) -> np.ndarray:
    """maxEntropy per image: the larger of the two models' softmax entropies, ``[n]``."""
    return np.maximum(softmax_entropy(logits_a), softmax_entropy(logits_b))


def describe_match(match: np.ndarray, entropy: np.ndarray) -> dict:
    """Median and SD of Match, and Pearson corr(Match, maxEntropy) with its p-value.

    Images with an undefined Match (NaN) are left out and counted.

    Args:
      match: ``[n]`` Match scores.
      entropy: ``[n]`` maxEntropy.

    Returns:
      ``{'median', 'sd' (ddof=1), 'n', 'n_undefined', 'r', 'p'}``.
    """
    match, entropy = np.asarray(match, np.float64), np.asarray(entropy, np.float64)
    ok = np.isfinite(match) & np.isfinite(entropy)
    out = {"n": int(ok.sum()), "n_undefined": int((~ok).sum()),
           "median": float(np.median(match[ok])) if ok.any() else float("nan"),
           "sd": float(np.std(match[ok], ddof=1)) if ok.sum() > 1 else float("nan"),
           "r": float("nan"), "p": float("nan")}
    if ok.sum() > 2 and np.ptp(match[ok]) > 0 and np.ptp(entropy[ok]) > 0:
        res = scipy.stats.pearsonr(match[ok], entropy[ok])
        out["r"], out["p"] = float(res.statistic), float(res.pvalue)
    return out
