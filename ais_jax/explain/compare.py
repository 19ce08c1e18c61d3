"""Comparing an AIS heatmap with a saliency map: relative risk (SPEC §6) and CC/SIM/KLD/AUC (§11).

Every function takes a stack of maps of one size, ``[n, H, W]`` (a single ``[H, W]`` map is
accepted as ``n = 1``), and returns one value per image; everything is computed in float64 with
NumPy. `compare_maps` runs them all over maps of mixed sizes, grouping images of one size.
A map is used in the precision it is given in (float64 saliency maps are never rounded to
float32 on the way: a top-p% threshold can fall between two values float32 would merge).

Top-p% regions (the released rule): ``region = map > percentile(map, 100 - p)``, with NumPy's
default ("linear") percentile of all the map's pixels. Pixels tied with the threshold are left
out, so a region can hold fewer than p% of the pixels, and a constant map has an empty region.

Relative risk of the heatmap's region CR given the saliency region Sal::

    tp = |Sal & CR|, fn = |Sal & ~CR|, fp = |~Sal & CR|, tn = |~Sal & ~CR|
    RR = [tp / (tp + fn)] / [fp / (fp + tn)]          (chance = 1)

Cases, each counted and reported (`RelativeRisk.counts`), never dropped silently:

* ``'nan_empty_saliency'``: Sal is empty (tp + fn = 0; e.g. a constant saliency map) -> NaN;
* ``'nan_empty_heatmap'``: Sal is not empty but CR is (tp = fp = 0; e.g. an all-zero heatmap,
  which `ais_jax` returns when no AIS is positive) -> NaN;
* ``'inf'``: fp = 0 and tp > 0 (CR lies inside Sal) -> +inf;
* ``'nan_full_saliency'``: Sal covers every pixel (fp + tn = 0) -> NaN. The strict rule
  always leaves a map's minimum out of its region, so this only happens for a region given
  directly to `relative_risk_from_regions` (e.g. a planted mask);
* ``'finite'``: everything else (tp = 0 < fp gives RR = 0).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

PERCENTS = (5, 10, 15)
RR_CASES = ("finite", "inf", "nan_empty_saliency", "nan_empty_heatmap", "nan_full_saliency")
# MATLAB's eps, as the MIT saliency benchmark's KLdiv.m.
KLD_EPS = 2.2204e-16


def _stack(maps: np.ndarray, name: str) -> np.ndarray:
    """``[H, W]`` or ``[n, H, W]`` finite real values -> ``[n, H, W]`` float64."""
    maps = np.asarray(maps)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or min(maps.shape[1:]) < 1:
        raise ValueError(f"{name}: expected maps [n, H, W] or one map [H, W], got shape "
                         f"{maps.shape}")
    if not np.issubdtype(maps.dtype, np.number) or np.iscomplexobj(maps):
        raise ValueError(f"{name}: expected real numbers, got dtype {maps.dtype}")
    maps = maps.astype(np.float64)
    if not np.isfinite(maps).all():
        raise ValueError(f"{name}: maps hold NaN or infinite values")
    return maps


def _pair(heat: np.ndarray, sal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heat, sal = _stack(heat, "heatmap"), _stack(sal, "saliency")
    if heat.shape != sal.shape:
        swapped = " (height and width swapped?)" if heat.shape[1:] == sal.shape[:0:-1] else ""
        raise ValueError(f"heatmaps {heat.shape} and saliency maps {sal.shape} must have one "
                         f"shape [n, H, W]{swapped}")
    return heat, sal


def _check_percent(p: float) -> float:
    if not 0 < p < 100:
        raise ValueError(f"p must be a percentage in (0, 100), got {p}")
    return float(p)


def top_region(maps: np.ndarray, p: float) -> np.ndarray:
    """The top-p% region of each map by the released strict rule.

    Args:
      maps: ``[n, H, W]`` (or ``[H, W]``) finite values.
      p: percentage of pixels, in (0, 100).

    Returns:
      ``[n, H, W]`` bool: ``map > percentile(map, 100 - p)`` (NumPy's linear percentile over
      the map's pixels, in float64). Ties with the threshold are excluded.
    """
    maps = _stack(maps, "maps")
    flat = maps.reshape(maps.shape[0], -1)
    threshold = np.percentile(flat, 100 - _check_percent(p), axis=1)  # [n]
    return maps > threshold[:, None, None]


@dataclasses.dataclass(frozen=True)
class RelativeRisk:
    """Relative risk per image, with its confusion counts and case.

    Attributes:
      rr: ``[n]`` float64; +inf and NaN as described in the module docstring.
      tp, fn, fp, tn: ``[n]`` int64 pixel counts.
      case: ``[n]`` str, one of `RR_CASES`.
    """

    rr: np.ndarray
    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    case: np.ndarray

    def counts(self) -> dict[str, int]:
        """How many images fall in each of `RR_CASES`."""
        return {c: int(np.sum(self.case == c)) for c in RR_CASES}


def relative_risk_from_regions(sal_region: np.ndarray, cr_region: np.ndarray) -> RelativeRisk:
    """Relative risk of CR given Sal from the two regions.

    Args:
      sal_region: ``[n, H, W]`` bool, the saliency region Sal.
      cr_region: ``[n, H, W]`` bool, the heatmap region CR.

    Returns:
      A `RelativeRisk`.
    """
    sal_region, cr_region = np.asarray(sal_region, bool), np.asarray(cr_region, bool)
    if sal_region.shape != cr_region.shape or sal_region.ndim != 3:
        raise ValueError(f"regions must share one shape [n, H, W], got {sal_region.shape} and "
                         f"{cr_region.shape}")
    axes = (1, 2)
    tp = np.sum(sal_region & cr_region, axis=axes, dtype=np.int64)
    fn = np.sum(sal_region & ~cr_region, axis=axes, dtype=np.int64)
    fp = np.sum(~sal_region & cr_region, axis=axes, dtype=np.int64)
    tn = np.sum(~sal_region & ~cr_region, axis=axes, dtype=np.int64)
    empty_sal = tp + fn == 0
    full_sal = ~empty_sal & (fp + tn == 0)
    empty_cr = ~empty_sal & ~full_sal & (tp + fp == 0)
    unbounded = ~empty_sal & ~full_sal & ~empty_cr & (fp == 0)
    finite = ~(empty_sal | full_sal | empty_cr | unbounded)
    rr = np.full(tp.shape, np.nan)
    rr[unbounded] = np.inf
    # Integer counts, so each ratio is one exact-as-possible float64 division.
    rr[finite] = (tp[finite] * (fp + tn)[finite]) / ((tp + fn)[finite] * fp[finite])
    case = np.select([finite, unbounded, empty_sal, empty_cr, full_sal], list(RR_CASES),
                     default="")
    return RelativeRisk(rr=rr, tp=tp, fn=fn, fp=fp, tn=tn, case=case)


def relative_risk(heat: np.ndarray, sal: np.ndarray, p: float) -> RelativeRisk:
    """Relative risk that a pixel is in the heatmap's top p% given it is in the saliency's.

    Args:
      heat: ``[n, H, W]`` AIS heatmaps (or a baseline in their place), at the image size.
      sal: ``[n, H, W]`` saliency maps, same shape.
      p: percentage, in (0, 100); both regions by `top_region`.

    Returns:
      A `RelativeRisk`.
    """
    heat, sal = _pair(heat, sal)
    return relative_risk_from_regions(top_region(sal, p), top_region(heat, p))


def cc(heat: np.ndarray, sal: np.ndarray) -> np.ndarray:
    """Pearson's linear correlation coefficient of the two maps' pixels (MIT benchmark CC).

    ``CC = Σ (P - mean P)(Q - mean Q) / sqrt(Σ (P - mean P)² · Σ (Q - mean Q)²)``; no other
    normalisation is needed (CC is invariant to affine rescaling of either map).

    Args:
      heat: ``[n, H, W]`` maps P.
      sal: ``[n, H, W]`` maps Q, same shape.

    Returns:
      ``[n]`` float64 in [-1, 1]; NaN where either map is constant.
    """
    heat, sal = _pair(heat, sal)
    n = heat.shape[0]
    p = heat.reshape(n, -1) - heat.reshape(n, -1).mean(axis=1, keepdims=True)
    q = sal.reshape(n, -1) - sal.reshape(n, -1).mean(axis=1, keepdims=True)
    denom = np.sqrt(np.sum(p * p, axis=1) * np.sum(q * q, axis=1))
    num = np.sum(p * q, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), np.nan)


def _unit_sum(maps: np.ndarray) -> np.ndarray:
    """Each ``[H, W]`` map divided by its sum; NaN where the sum is not positive."""
    total = maps.sum(axis=(1, 2), keepdims=True)
    ok = total > 0
    return np.where(ok, maps / np.where(ok, total, 1.0), np.nan)


def _min_max(maps: np.ndarray) -> np.ndarray:
    """Each map rescaled to [0, 1]; NaN where the map is constant."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    ok = span > 0
    return np.where(ok, (maps - lo) / np.where(ok, span, 1.0), np.nan)


def sim(heat: np.ndarray, sal: np.ndarray, *, min_max: bool = True) -> np.ndarray:
    """Similarity (histogram intersection) of the two maps (MIT benchmark SIM).

    ``P' = P / Σ P`` and ``Q' = Q / Σ Q`` after rescaling each map to [0, 1] by min-max;
    ``SIM = Σ min(P', Q')``, in [0, 1] (1: identical distributions).

    Implementations differ on the min-max step: the MIT benchmark's ``similarity.m`` always
    applies it (the default here); others (several Python ports) only divide by the sum when a
    map is already non-negative, which gives a different value whenever a map's minimum is
    above 0. ``min_max=False`` gives that variant (it needs non-negative maps).

    Args:
      heat: ``[n, H, W]`` maps P.
      sal: ``[n, H, W]`` maps Q, same shape.
      min_max: apply the min-max step (MIT's definition).

    Returns:
      ``[n]`` float64; NaN where a map is constant (min-max undefined) or, without min-max,
      has a negative value or a zero sum.
    """
    heat, sal = _pair(heat, sal)
    if min_max:
        heat, sal = _min_max(heat), _min_max(sal)
    else:
        bad = (heat.min(axis=(1, 2)) < 0) | (sal.min(axis=(1, 2)) < 0)
        heat = np.where(bad[:, None, None], np.nan, heat)
    return np.sum(np.minimum(_unit_sum(heat), _unit_sum(sal)), axis=(1, 2))


def _shift_negative(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maps with a negative value shifted to a minimum of 0 (``map - min``); others as given.

    Returns:
      (the maps, ``[n]`` bool: which were shifted).
    """
    lo = maps.min(axis=(1, 2))
    shifted = lo < 0
    return np.where(shifted[:, None, None], maps - lo[:, None, None], maps), shifted


def kld(heat: np.ndarray, sal: np.ndarray, *, eps: float = KLD_EPS) -> np.ndarray:
    """Kullback-Leibler divergence of the heatmap from the saliency map (MIT benchmark KLD).

    ``P' = P / Σ P``, ``Q' = Q / Σ Q``, ``KLD = Σ Q' · log(ε + Q' / (P' + ε))`` with natural
    log and ε = 2.2204e-16; Q (the saliency map) is the reference, so KLD is not symmetric and
    0 means identical. The MIT ``KLdiv.m`` divides by ``Σ + ε`` instead of ``Σ`` (a relative
    difference below 1e-15 for maps with a sum of order 1 or more).

    Negative values (e.g. a z-scored saliency map): a map that has any is first shifted to a
    minimum of 0 (``map - min(map)``, the shift SIM's min-max applies too), so that it is a
    distribution; `kld_shifted` says which maps were, and Aim 3's tables count them. Maps
    without negative values are used as they are.

    Args:
      heat: ``[n, H, W]`` maps P.
      sal: ``[n, H, W]`` maps Q, same shape.
      eps: the regulariser ε.

    Returns:
      ``[n]`` float64 (lower = more similar); NaN where a map (after the shift) has a zero sum,
      e.g. an all-zero heatmap or a constant map: as distributions they are undefined.
    """
    heat, sal = _pair(heat, sal)
    p = _unit_sum(_shift_negative(heat)[0])
    q = _unit_sum(_shift_negative(sal)[0])
    return np.sum(q * np.log(eps + q / (p + eps)), axis=(1, 2))


def kld_shifted(heat: np.ndarray, sal: np.ndarray) -> np.ndarray:
    """``[n]`` bool: whether `kld` shifted the heatmap or the saliency map (a negative value)."""
    heat, sal = _pair(heat, sal)
    return _shift_negative(heat)[1] | _shift_negative(sal)[1]


def auc(heat: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of the heatmap's values for a region of positive pixels.

    The probability that a random pixel of the region has a higher heatmap value than a random
    pixel outside it, ties counting one half (the Mann-Whitney U statistic over
    ``|pos| · |neg|``, from average ranks); threshold-free, 0.5 = chance.

    Args:
      heat: ``[n, H, W]`` maps P.
      positives: ``[n, H, W]`` bool, e.g. the top-p% saliency region (`top_region`), or
        ``[k, n, H, W]`` for k regions per image (the heatmaps are ranked once for all).

    Returns:
      ``[n]`` (or ``[k, n]``) float64 in [0, 1]; NaN where the region is empty or covers every
      pixel.
    """
    heat = _stack(heat, "heatmap")
    positives = np.asarray(positives, bool)
    single = positives.ndim == 3
    if single:
        positives = positives[None]
    if positives.shape[1:] != heat.shape:
        raise ValueError(f"positives {positives.shape} must have the heatmaps' shape "
                         f"{heat.shape} (or [k, *that])")
    n = heat.shape[0]
    flat = heat.reshape(n, -1)  # [n, H*W]
    ordered = np.sort(flat, axis=1)
    pos = positives.reshape(positives.shape[0], n, -1)  # [k, n, H*W]
    n_pos = pos.sum(axis=2).astype(np.float64)  # [k, n]
    n_neg = pos.shape[2] - n_pos
    # Sum of the positives' average ranks (1-based, ties averaged, as scipy.stats.rankdata):
    # a value's average rank is (#smaller + #smaller-or-equal + 1) / 2, read off the sorted
    # row; only the (few) positive pixels are looked up, so the row is sorted, not argsorted.
    rank_sum = np.zeros(n_pos.shape)
    for r in range(pos.shape[0]):
        for i in range(n):
            values = flat[i][pos[r, i]]
            below = np.searchsorted(ordered[i], values, side="left")
            upto = np.searchsorted(ordered[i], values, side="right")
            rank_sum[r, i] = np.sum(below + upto + 1) / 2
    u = rank_sum - n_pos * (n_pos + 1) / 2
    ok = (n_pos > 0) & (n_neg > 0)
    out = np.where(ok, u / np.where(ok, n_pos * n_neg, 1.0), np.nan)
    return out[0] if single else out


METRICS = ("cc", "sim", "kld")


def compare_maps(
    heatmaps: Sequence[np.ndarray], saliency: Sequence[np.ndarray],
    percents: Sequence[float] = PERCENTS, *, chunk: int = 16, progress: str | None = None,
) -> dict[str, np.ndarray]:
    """Every comparison of this module for a list of images of any sizes.

    Images of one (H, W) are stacked and computed together, ``chunk`` at a time (every value
    is per image, so chunking bounds memory without changing results).

    Args:
      heatmaps: ``n`` maps ``[H_i, W_i]`` (AIS heatmaps, or a baseline).
      saliency: ``n`` saliency maps, each of its heatmap's shape.
      percents: the p of the top-p% regions.
      chunk: images per stacked computation.
      progress: a tqdm bar with this description (None: no bar).

    Returns:
      ``[n]`` arrays, in image order: ``'cc'``, ``'sim'``, ``'kld'``, ``'kld_shifted'`` (bool:
      a map had negative values and was shifted for KLD, see `kld`); per p: ``'rr_<p>'``,
      ``'case_<p>'`` (str), ``'tp_<p>'``, ``'fn_<p>'``, ``'fp_<p>'``, ``'tn_<p>'`` and
      ``'auc_<p>'`` (AUC of the heatmap for the top-p% saliency region).
    """
    if len(heatmaps) != len(saliency):
        raise ValueError(f"{len(heatmaps)} heatmaps but {len(saliency)} saliency maps")
    n = len(heatmaps)
    shapes = []
    for i, (h, s) in enumerate(zip(heatmaps, saliency, strict=True)):
        h_shape, s_shape = np.shape(h), np.shape(s)
        if len(h_shape) != 2 or h_shape != s_shape:
            raise ValueError(f"image {i}: heatmap {h_shape} and saliency map {s_shape} must be "
                             "one (H, W)")
        shapes.append(h_shape)
    out: dict[str, np.ndarray] = {m: np.full(n, np.nan) for m in METRICS}
    out["kld_shifted"] = np.zeros(n, bool)
    for p in percents:
        tag = f"{p:g}"
        out[f"rr_{tag}"] = np.full(n, np.nan)
        out[f"auc_{tag}"] = np.full(n, np.nan)
        out[f"case_{tag}"] = np.full(n, "", dtype=object)
        for k in ("tp", "fn", "fp", "tn"):
            out[f"{k}_{tag}"] = np.zeros(n, np.int64)
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    groups = []
    for shape in dict.fromkeys(shapes):
        same = [i for i, s in enumerate(shapes) if s == shape]
        groups += [np.array(same[j:j + chunk]) for j in range(0, len(same), chunk)]
    bar = tqdm(total=n, desc=progress, unit="img", disable=progress is None)
    for idx in groups:
        bar.update(len(idx))
        heat = _stack(np.stack([heatmaps[i] for i in idx]), "heatmap")
        sal = _stack(np.stack([saliency[i] for i in idx]), "saliency")
        out["cc"][idx], out["sim"][idx], out["kld"][idx] = cc(heat, sal), sim(heat, sal), kld(
            heat, sal)
        out["kld_shifted"][idx] = kld_shifted(heat, sal)
        sal_regions = np.stack([top_region(sal, p) for p in percents])  # [k, m, H, W]
        aucs = auc(heat, sal_regions)  # [k, m]: the heatmaps are ranked once
        for p, sal_region, auc_p in zip(percents, sal_regions, aucs, strict=True):
            tag = f"{p:g}"
            rr = relative_risk_from_regions(sal_region, top_region(heat, p))
            out[f"rr_{tag}"][idx] = rr.rr
            out[f"case_{tag}"][idx] = rr.case
            for k in ("tp", "fn", "fp", "tn"):
                out[f"{k}_{tag}"][idx] = getattr(rr, k)
            out[f"auc_{tag}"][idx] = auc_p
    bar.close()
    for p in percents:
        out[f"case_{p:g}"] = out[f"case_{p:g}"].astype(str)
    return out
