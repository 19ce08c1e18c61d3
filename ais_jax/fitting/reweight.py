"""Feature reweighting of the penultimate embeddings (SPEC §10), the paper's other way to align.

Peterson, Abbott & Griffiths (2018) predict human similarity from a weighted inner product of
the network's features, fitted by ridge regression over pairs of images; Kaniuth & Hebart
(2022) call it feature-reweighted RSA (this is its diagonal case):

    s_hat_ij = w_0 + sum_d w_d e_id e_jd                 one regression row per pair i < j

    minimise  sum_{i<j} (H_ij - s_hat_ij)^2 + alpha * ||w||^2     (intercept w_0 unpenalised)

Solving it. With ``X`` the ``[N, D]`` pair features ``x_ij = e_i * e_j`` (N = n(n-1)/2; 4560
pairs x 4096 features for 96 training images) centred over pairs (that absorbs the
intercept), ``w = (Xc^T Xc + alpha I)^{-1} Xc^T yc``, ``w_0 = mean(y) - mean(X) . w``. ``X`` is
never needed for the primal normal matrix: since ``(a*b)(a*b)^T = (a a^T) * (b b^T)``,

    X^T X = 1/2 [ (E^T E) * (E^T E) - (E*E)^T (E*E) ]          O(n D^2) instead of O(n^2 D^2)

(two ``[D, n] x [n, D]`` products), and ``X^T y = 1/2 diag(E^T Y E)``. When there are fewer
pairs than features (the inner folds: ~77 images, 2926 pairs) the dual is smaller:
``w = Xc^T (Xc Xc^T + alpha I)^{-1} yc``. Either way each penalty costs one Cholesky solve of a
symmetric positive definite matrix (``scipy.linalg.cho_factor``; ~1 s for D = 4096 on 2 cores,
where an eigendecomposition shared by all penalties takes ~35 s). Everything runs in float64
NumPy/SciPy: the normal matrix squares the features' condition number, beyond float32.

Penalties are relative: ``alpha = r * trace(Xc^T Xc) / D`` (``r`` times the mean eigenvalue),
so the same ``r`` means the same strength for the inner fits and the final one; ``r`` is chosen
by inner k-fold cross-validation over the *training images* (folds of images, not of pairs;
held-out Pearson rho on the held-out images' pairs, averaged over inner folds).

References:
  Peterson, J. C., Abbott, J. T. & Griffiths, T. L. (2018). Evaluating (and improving) the
  correspondence between deep neural networks and human representations. Cognitive Science
  42(8), 2648-2669.
  Kaniuth, P. & Hebart, M. N. (2022). Feature-reweighted representational similarity
  analysis: a method for improving the fit between computational models, brains, and
  behavior. NeuroImage 257, 119294.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ais_jax.engine.similarity import alignment, check_score
from ais_jax.fitting import inner

DEFAULT_RELATIVE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_INNER_FOLDS = 5
SOLVERS = ("auto", "primal", "dual")


def pair_features(emb: np.ndarray) -> np.ndarray:
    """The regression rows: ``x_ij = e_i * e_j`` for i < j (row-major upper triangle).

    Args:
      emb: ``[n, D]`` embeddings.

    Returns:
      ``[n (n - 1) / 2, D]``.
    """
    rows, cols = np.triu_indices(emb.shape[0], k=1)
    return emb[rows] * emb[cols]


def _targets(human: np.ndarray) -> np.ndarray:
    return human[np.triu_indices(human.shape[0], k=1)]


def _centred_normal(emb: np.ndarray, human: np.ndarray):
    """(Xc^T Xc ``[D, D]``, Xc^T yc ``[D]``, mean pair feature ``[D]``, mean target) without X."""
    n = emb.shape[0]
    n_pairs = n * (n - 1) // 2
    gram = emb.T @ emb  # [D, D]
    sq = emb * emb  # [n, D]
    xtx = 0.5 * (gram * gram - sq.T @ sq)
    upper = np.triu(human, k=1)  # y_ij for i < j, as the upper-triangle scores read it
    xty = np.einsum("id,ij,jd->d", emb, upper, emb)
    total = emb.sum(axis=0)
    x_mean = 0.5 * (total * total - sq.sum(axis=0)) / n_pairs
    y_mean = upper.sum() / n_pairs
    return (xtx - n_pairs * np.outer(x_mean, x_mean), xty - n_pairs * x_mean * y_mean,
            x_mean, y_mean)


def pair_scale(emb: np.ndarray) -> float:
    """``trace(Xc^T Xc) / D``: the mean eigenvalue the relative penalties are measured in."""
    emb = np.asarray(emb, np.float64)
    n, d = emb.shape
    n_pairs = n * (n - 1) // 2
    sq = emb * emb
    total_sq = 0.5 * (np.sum(sq.sum(axis=0) ** 2) - np.sum(sq * sq))  # sum of ||x_ij||^2
    total = emb.sum(axis=0)
    x_mean = 0.5 * (total * total - sq.sum(axis=0)) / n_pairs
    return float((total_sq - n_pairs * x_mean @ x_mean) / d)


def ridge_pairs(emb: np.ndarray, human: np.ndarray, alphas: Sequence[float], *,
                solver: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights of ``H_ij ~ w_0 + sum_d w_d e_id e_jd`` over all pairs i < j, per penalty.

    Args:
      emb: ``[n, D]`` embeddings of the fitting images.
      human: ``[n, n]`` their human similarity (upper triangle read).
      alphas: ``[A]`` absolute penalties, > 0.
      solver: 'primal' (``D x D`` normal matrix, built in O(n D^2)), 'dual' (``N x N``
        pair kernel) or 'auto' (the smaller system).

    Returns:
      (w ``[A, D]``, w_0 ``[A]``), float64.
    """
    emb = np.asarray(emb, np.float64)
    human = np.asarray(human, np.float64)
    if emb.ndim != 2 or emb.shape[0] < inner.MIN_IMAGES:
        raise ValueError(f"emb must be [n >= 3, D], got shape {emb.shape}")
    n, d = emb.shape
    if human.shape != (n, n):
        raise ValueError(f"human matrix must be [{n}, {n}], got {human.shape}")
    alphas = np.asarray(alphas, np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or np.any(~(alphas > 0)):
        raise ValueError(f"ridge penalties must be > 0, got {alphas}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    n_pairs = n * (n - 1) // 2
    if solver == "auto":
        solver = "dual" if n_pairs < d else "primal"
    ws = np.empty((alphas.size, d))
    if solver == "primal":
        xtx, xty, x_mean, y_mean = _centred_normal(emb, human)
        for a, alpha in enumerate(alphas):
            factor = scipy.linalg.cho_factor(xtx + alpha * np.eye(d), overwrite_a=True,
                                             check_finite=False)
            ws[a] = scipy.linalg.cho_solve(factor, xty, check_finite=False)
    else:
        x = pair_features(emb)  # [N, D]
        y = _targets(human)
        x_mean, y_mean = x.mean(axis=0), y.mean()
        xc = x - x_mean
        kernel = xc @ xc.T  # [N, N]
        for a, alpha in enumerate(alphas):
            factor = scipy.linalg.cho_factor(kernel + alpha * np.eye(n_pairs), overwrite_a=True,
                                             check_finite=False)
            beta = scipy.linalg.cho_solve(factor, y - y_mean, check_finite=False)
            ws[a] = xc.T @ beta
    return ws, y_mean - ws @ x_mean


def predicted_similarity(emb: np.ndarray, w: np.ndarray, w0: float) -> np.ndarray:
    """``s_hat_ij = w_0 + sum_d w_d e_id e_jd`` for every pair of ``emb`` ``[n, D]``: ``[n, n]``."""
    emb = np.asarray(emb, np.float64)
    return (emb * w) @ emb.T + w0


def _rho(sim: np.ndarray, human: np.ndarray) -> float:
    """Held-out Pearson rho of the upper triangles, float64 (choosing the penalty)."""
    iu = np.triu_indices(human.shape[0], k=1)
    a, b = sim[iu] - sim[iu].mean(), human[iu] - human[iu].mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


def fit_reweight(
    emb: np.ndarray,
    human: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    score: str,
    relative_alphas: Sequence[float] = DEFAULT_RELATIVE_ALPHAS,
    inner_folds: int = DEFAULT_INNER_FOLDS,
    seed: int = 0,
) -> dict:
    """Fits feature weights on one fold's training pairs and scores them on its test pairs.

    Only ``emb[train]`` and ``human[train][:, train]`` enter the fits and the choice of the
    penalty (inner folds split the training images); the test pairs are scored once.

    Args:
      emb: ``[n, D]`` penultimate embeddings of all images (the frozen, unmasked network).
      human: ``[n, n]`` human similarity.
      train: training image indices.
      test: test image indices.
      score: 'r2' or 'rho' (as Full/Retained): Pearson of ``s_hat`` with H on the test pairs,
        or its square.
      relative_alphas: penalty grid in units of the mean eigenvalue (`pair_scale`).
      inner_folds: k of the inner cross-validation over training images.
      seed: seed of the inner folds.

    Returns:
      JSON-ready dict: train and test scores, the chosen relative and absolute penalty, the
      inner held-out rho per penalty, the intercept and weight summary, the inner folds'
      images and the hyper-parameters.
    """
    check_score(score)
    emb = np.asarray(emb, np.float64)
    human = np.asarray(human, np.float64)
    if emb.ndim != 2:
        raise ValueError(f"emb must be [n, D], got shape {emb.shape}")
    n = emb.shape[0]
    if human.shape != (n, n):
        raise ValueError(f"human matrix must be [{n}, {n}], got {human.shape}")
    train, test = inner.check_split(train, test, n)
    rel = np.asarray(relative_alphas, np.float64)
    if rel.ndim != 1 or rel.size == 0 or np.any(~(rel > 0)):
        raise ValueError(f"relative_alphas must be > 0, got {relative_alphas}")

    if not (np.isfinite(emb[train]).all() and np.isfinite(human[np.ix_(train, train)]).all()):
        raise ValueError("embeddings or human similarities of the training images are not "
                         "all finite")
    splits = inner.kfold_split(train, inner_folds, seed)
    inner_rho = np.empty((len(splits), rel.size))
    for f, (fit_idx, val_idx) in enumerate(splits):
        e_fit = emb[fit_idx]
        ws, w0s = ridge_pairs(e_fit, human[np.ix_(fit_idx, fit_idx)], rel * pair_scale(e_fit))
        h_val = human[np.ix_(val_idx, val_idx)]
        for a in range(rel.size):
            inner_rho[f, a] = _rho(predicted_similarity(emb[val_idx], ws[a], w0s[a]), h_val)
    finite = np.isfinite(inner_rho)
    counts = finite.sum(axis=0)
    mean_rho = np.where(counts > 0, np.where(finite, inner_rho, 0.0).sum(axis=0)
                        / np.maximum(counts, 1), np.nan)  # NaN folds ignored, warning-free
    if np.all(np.isnan(mean_rho)):
        raise ValueError("every ridge penalty gives NaN on the inner held-out images")
    best = int(np.nanargmax(mean_rho))  # first maximum: the weakest such penalty

    e_train = emb[train]
    h_train = human[np.ix_(train, train)]
    alpha = float(rel[best] * pair_scale(e_train))
    ws, w0s = ridge_pairs(e_train, h_train, [alpha])
    w, w0 = ws[0], float(w0s[0])

    def scored(idx, h):
        sim = predicted_similarity(emb[idx], w, w0)
        return float(alignment(jnp.asarray(sim, jnp.float32), jnp.asarray(h, jnp.float32),
                               score))

    return {
        "method": "reweight",
        "score": score,
        "train": train.tolist(),
        "test": test.tolist(),
        "inner_val": [v.tolist() for _, v in splits],
        "relative_alphas": rel.tolist(),
        "inner_val_rho": [[None if not np.isfinite(v) else float(v) for v in row]
                          for row in inner_rho],
        "mean_inner_val_rho": [None if not np.isfinite(v) else float(v) for v in mean_rho],
        "relative_alpha": float(rel[best]),
        "alpha": alpha,
        "intercept": w0,
        "weights_mean": float(w.mean()),
        "weights_sd": float(w.std()),
        "weights_negative": int((w < 0).sum()),
        "train_score": scored(train, h_train),
        "test_score": scored(test, human[np.ix_(test, test)]),
        "hyper": {"inner_folds": int(inner_folds), "seed": int(seed),
                  "alpha_unit": "trace(Xc^T Xc) / D", "alpha_choice": "inner k-fold over "
                  "training images, max mean held-out Pearson rho"},
    }
