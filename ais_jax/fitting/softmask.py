"""Learned soft masks over the feature maps (SPEC §10), the continuous cousin of greedy selection.

A mask ``m = sigmoid(theta)`` in ``(0, 1)^M`` scales map k's fc6 input block. fc6 is linear, so
with the per-map contributions ``contrib[i, k] = blocks[i, k] @ W6[block k]`` (``[M, n, D6]``,
computed once per image set) the masked fc6 pre-activation is

    fc6_pre(m)[i] = b6 + sum_k m_k contrib[i, k]                       (the SPEC §2 identity)

an M-wide product per image instead of the whole fc6 (VGG-16: 512 instead of 25088); fc7, ReLUs
and the correlations follow as in the plain head. A gap head (ResNet, `ais_jax.engine.heads`)
has no fc6: its embedding is the pooled maps, and the mask scales coordinate k of it
(``contrib[k, i] = blocks[i, k]``, ``E(m)[i] = m * x_i``).

``theta`` is fitted with optax's Adam to maximise

    score(corrcoef(E(m))[train, train], H_train) - lam * mean(m)

from ``m ~ 1`` (all maps kept). The penalty ``lam`` is chosen on the training images only, by
one inner hold-out split (`ais_jax.fitting.inner.holdout_split`): a *warm-started path* over the
``lam`` grid (ascending; each fit starts where the previous ended) is fitted on the inner-fit
images and each ``lam``'s mask is scored on the inner held-out images (Pearson rho: r^2 cannot
tell anti-alignment from alignment); the best ``lam`` is then refitted on all training images,
warm-started from its path mask. The test images are used once, to score the final masks.

Stopping rule (each fit, inside one ``lax.while_loop``): at most ``max_steps`` full-batch Adam
steps; stop earlier once the objective has not risen by more than ``tol`` for ``patience``
consecutive steps; return the best mask seen (highest objective).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ais_jax.engine.ablation import dense, full_embeddings, head_dims
from ais_jax.engine.heads import head_family
from ais_jax.engine.similarity import alignment, check_score, corr_matrix
from ais_jax.fitting import inner
from ais_jax.models.vgg16 import PRECISION

# The penalty grid: the gradient of lam * mean(m) is lam / M per map, so lam = 0.05 balances a
# map whose removal changes the score by ~1e-4 (the size of AIS values on real data, SPEC §7).
DEFAULT_LAMBDAS = (0.0, 0.03, 0.1, 0.3, 1.0)
DEFAULT_LEARNING_RATE = 0.1  # Adam step in logit units: theta crosses 0 from 3 in ~30 steps
DEFAULT_INIT_LOGIT = 3.0  # sigmoid(3) = 0.95: "all maps kept", with a live gradient
# Each step reads fc7's kernel twice (forward and backward) whatever the number of images, so
# steps, not images, set the cost: at most 5 x 20 + 50 = 150 steps per fold (measured at
# n = 120 with a full-size head: about a greedy curve's time on the same CPU).
DEFAULT_PATH_STEPS = 20  # max steps per lam on the inner path (warm-started: they add up)
DEFAULT_FINAL_STEPS = 50  # max steps of the refit on all training images
DEFAULT_PATIENCE = 10
DEFAULT_TOL = 1e-5  # objective units (scores; AIS values are ~1e-4)
DEFAULT_HOLDOUT = 0.2


@jax.jit
def map_contributions(head_params: dict, blocks: jax.Array) -> jax.Array:
    """Each map's additive share of the fc6 pre-activation (bias excluded).

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` fc6 input blocks.

    Returns:
      ``[M, n, D6]``: ``contrib[k, i] = blocks[i, k] @ W6[k * B:(k + 1) * B]``. Map-major, so
      that the masked sum over maps reads one contiguous ``[M, n * D6]`` matrix (a GEMV each
      way), and the batched product has its batch axis first. A gap head: ``[M, n, 1]``,
      the blocks themselves (its "fc6" is the identity).
    """
    if head_family(head_params) == "gap":
        return jnp.swapaxes(blocks, 0, 1)
    maps, block = blocks.shape[1:]
    w6 = head_params["fc6"]["kernel"].reshape(maps, block, -1)  # [M, B, D6]
    return jnp.einsum("nkb,kbo->kno", blocks, w6, precision=PRECISION)


def masked_embeddings(head_params: dict, contrib: jax.Array, mask: jax.Array) -> jax.Array:
    """Penultimate embeddings with map k's fc6 input scaled by ``mask[k]`` (fc6 identity).

    Equals the plain head on ``blocks * mask[None, :, None]`` (and, for a positive mask, on the
    activations scaled channel by channel: pooling commutes with positive scaling).

    Args:
      head_params: ``params['head']``.
      contrib: ``[M, n, D6]`` from `map_contributions`.
      mask: ``[M]`` map weights.

    Returns:
      ``[n, D]`` embeddings.
    """
    if head_family(head_params) == "gap":  # the embedding is the pooled maps: scale them
        return (mask[:, None] * contrib[:, :, 0]).T
    maps, n, d6 = contrib.shape
    # As one [M] x [M, n * D6] GEMV: its transpose (the gradient) is a GEMV too. (Written as
    # einsum 'k,kno->no', XLA's CPU backward took ~30x longer.)
    delta = jnp.dot(mask, contrib.reshape(maps, n * d6), precision=PRECISION).reshape(n, d6)
    fc6_pre = head_params["fc6"]["bias"][None] + delta  # [n, D6]
    return jax.nn.relu(dense(jax.nn.relu(fc6_pre), head_params["fc7"]))


def mask_score(head_params: dict, contrib: jax.Array, human: jax.Array, mask: jax.Array,
               score: str) -> jax.Array:
    """Alignment of the masked embeddings with ``human`` ``[n, n]`` (same images as contrib)."""
    return alignment(corr_matrix(masked_embeddings(head_params, contrib, mask)), human, score)


def softmask_objective(theta: jax.Array, head_params: dict, contrib: jax.Array,
                       human: jax.Array, lam: jax.Array, score: str) -> jax.Array:
    """The quantity maximised: ``score(m) - lam * mean(m)`` with ``m = sigmoid(theta)``.

    Args:
      theta: ``[M]`` logits.
      head_params: ``params['head']``.
      contrib: ``[M, n, D6]`` contributions of the fitting images.
      human: ``[n, n]`` human similarity of the same images.
      lam: scalar sparsity penalty.
      score: 'rho' or 'r2'.

    Returns:
      Scalar objective (dtype of the inputs: the gradient test runs it in float64).
    """
    m = jax.nn.sigmoid(theta)
    return mask_score(head_params, contrib, human, m, score) - lam * jnp.mean(m)


@functools.partial(jax.jit, static_argnames=("score", "learning_rate", "max_steps", "patience"))
def fit_path(theta0: jax.Array, head_params: dict, contrib: jax.Array, human: jax.Array,
             lambdas: jax.Array, *, score: str, learning_rate: float, max_steps: int,
             patience: int, tol: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Warm-started fits over a penalty path, one jitted ``scan`` of ``while_loop`` s.

    Args:
      theta0: ``[M]`` starting logits.
      head_params: ``params['head']``.
      contrib: ``[M, n, D6]`` contributions of the fitting images.
      human: ``[n, n]`` their human similarity.
      lambdas: ``[L]`` penalties, fitted in order, each from the previous one's best logits.
      score: 'rho' or 'r2'.
      learning_rate: Adam step size.
      max_steps: most steps per penalty.
      patience: stop after this many steps without a rise of more than ``tol``.
      tol: least rise that counts.

    Returns:
      (thetas ``[L, M]`` best logits per penalty, steps ``[L]`` taken, objective ``[L]`` at the
      returned logits).
    """
    opt = optax.adam(learning_rate)
    value_and_grad = jax.value_and_grad(softmask_objective)

    def fit_one(theta_start, lam):
        def cond(c):
            step, stall = c[0], c[1]
            return (step < max_steps) & (stall < patience)

        def body(c):
            step, stall, ref, theta, state, best_theta, best_val = c
            val, grad = value_and_grad(theta, head_params, contrib, human, lam, score)
            finite = jnp.isfinite(val)
            better = finite & (val > best_val)
            best_theta = jnp.where(better, theta, best_theta)
            best_val = jnp.where(better, val, best_val)
            rose = finite & (val > ref + tol)
            ref = jnp.where(rose, val, ref)
            stall = jnp.where(rose, 0, stall + 1)
            updates, state = opt.update(-grad, state, theta)  # optax minimises
            return step + 1, stall, ref, optax.apply_updates(theta, updates), state, \
                best_theta, best_val

        ninf = jnp.array(-jnp.inf, contrib.dtype)
        init = (0, 0, ninf, theta_start, opt.init(theta_start), theta_start, ninf)
        step, _, _, _, _, best_theta, best_val = jax.lax.while_loop(cond, body, init)
        return best_theta, (best_theta, step, best_val)

    _, (thetas, steps, values) = jax.lax.scan(fit_one, theta0, lambdas)
    return thetas, steps, values


@functools.partial(jax.jit, static_argnames=("score",))
def _scores_of_masks(head_params, contrib, human, masks, *, score):
    """``[L]`` alignments of the images in ``contrib`` under each of ``masks`` ``[L, M]``."""
    return jax.lax.map(lambda m: mask_score(head_params, contrib, human, m, score), masks)


def _plain_score(head_params, blocks, human, mask, score) -> float:
    """Score of the plain (not fc6-identity) head on ``blocks * mask``; NaN for an empty mask."""
    if not np.any(mask):
        return float("nan")
    emb, _ = full_embeddings(head_params, jnp.asarray(blocks * mask[None, :, None], jnp.float32))
    return float(alignment(corr_matrix(emb), jnp.asarray(human, jnp.float32), score))


def fit_softmask(
    head_params: dict,
    blocks: np.ndarray,
    human: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    score: str,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    init_logit: float = DEFAULT_INIT_LOGIT,
    path_steps: int = DEFAULT_PATH_STEPS,
    final_steps: int = DEFAULT_FINAL_STEPS,
    patience: int = DEFAULT_PATIENCE,
    tol: float = DEFAULT_TOL,
    greedy_set: np.ndarray | None = None,
) -> dict:
    """Fits a soft mask on one fold's training images and scores it on its test images.

    Only ``blocks[train]`` and ``human[train][:, train]`` enter the fit and the choice of the
    penalty; ``blocks[test]`` and ``human[test][:, test]`` are read once, for the test scores.

    Args:
      head_params: ``params['head']`` of either family (`ais_jax.engine.heads`).
      blocks: ``[n, M, B]`` fc6 input blocks of all images.
      human: ``[n, n]`` human similarity of all images.
      train: training image indices.
      test: test image indices.
      score: 'r2' or 'rho': the objective's and the test scores' measure.
      lambdas: penalty grid, ascending (the warm-started path's order).
      holdout: share of the training images held out to choose the penalty.
      seed: seed of the inner split.
      learning_rate: Adam step size (logit units).
      init_logit: starting logit of every map (``sigmoid`` of it ~ 1: all maps kept).
      path_steps: most Adam steps per penalty on the inner path.
      final_steps: most Adam steps of the refit on all training images.
      patience: steps without a rise of more than ``tol`` before a fit stops.
      tol: least rise of the objective that counts.
      greedy_set: optional greedy ``S*`` (map indices) to compare the hard set with.

    Returns:
      JSON-ready dict: the continuous mask, the hard set ``{m > 0.5}`` (its size and overlap
      with ``greedy_set``), train and test scores of both, the chosen penalty, the path's
      held-out scores and steps, the inner split's images and every hyper-parameter.
    """
    check_score(score)
    head_params = jax.device_put(head_params)  # once, not at every jitted call
    blocks = np.asarray(blocks, np.float32)
    dims = head_dims(head_params, blocks)
    human = np.asarray(human, np.float64)
    if human.shape != (dims.n, dims.n):
        raise ValueError(f"human matrix must be [{dims.n}, {dims.n}], got {human.shape}")
    train, test = inner.check_split(train, test, dims.n)
    lams = np.asarray(lambdas, np.float64)
    if lams.ndim != 1 or lams.size == 0 or np.any(lams < 0) or np.any(np.diff(lams) < 0):
        raise ValueError(
            f"lambdas must be a non-empty ascending list of values >= 0, got {lambdas}")
    for name, v in (("path_steps", path_steps), ("final_steps", final_steps),
                    ("patience", patience)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    fit_idx, val_idx = inner.holdout_split(train, holdout, seed)

    def sub(idx):  # host-side gather: the jitted code only ever sees these images
        return jnp.asarray(blocks[idx]), jnp.asarray(human[np.ix_(idx, idx)], jnp.float32)

    kwargs = dict(score=score, learning_rate=float(learning_rate), patience=int(patience),
                  tol=float(tol))
    theta0 = jnp.full(dims.maps, init_logit, jnp.float32)
    b_fit, h_fit = sub(fit_idx)
    c_fit = map_contributions(head_params, b_fit)
    path_thetas, path_steps_taken, path_obj = fit_path(
        theta0, head_params, c_fit, h_fit, jnp.asarray(lams, jnp.float32),
        max_steps=int(path_steps), **kwargs)
    del c_fit  # [M, n_fit, D6]: ~0.6 GB at full size
    b_val, h_val = sub(val_idx)
    val_rho = np.asarray(_scores_of_masks(head_params, map_contributions(head_params, b_val),
                                          h_val, jax.nn.sigmoid(path_thetas), score="rho"),
                         np.float64)
    if np.all(np.isnan(val_rho)):
        raise ValueError("every penalty's mask gives NaN on the inner held-out images")
    best = int(np.nanargmax(val_rho))  # first maximum: the smallest such penalty

    b_train, h_train = sub(train)
    c_train = map_contributions(head_params, b_train)
    thetas, steps, obj = fit_path(
        path_thetas[best], head_params, c_train, h_train, jnp.asarray(lams[best:best + 1],
                                                                       jnp.float32),
        max_steps=int(final_steps), **kwargs)
    mask = np.asarray(jax.nn.sigmoid(thetas[0]), np.float64)  # [M]
    hard = mask > 0.5
    hard_set = np.flatnonzero(hard)
    train_soft = float(mask_score(head_params, c_train, h_train, jnp.asarray(mask, jnp.float32),
                                  score))
    del c_train

    h_test = human[np.ix_(test, test)]
    out = {
        "method": "softmask",
        "score": score,
        "train": train.tolist(),
        "test": test.tolist(),
        "inner_fit": fit_idx.tolist(),
        "inner_val": val_idx.tolist(),
        "lambdas": lams.tolist(),
        "path_val_rho": [None if not np.isfinite(v) else float(v) for v in val_rho],
        "path_steps": np.asarray(path_steps_taken).tolist(),
        "path_objective": np.asarray(path_obj, np.float64).tolist(),
        "lambda": float(lams[best]),
        "final_steps": int(steps[0]),
        "final_objective": float(obj[0]),
        "mask": mask.tolist(),
        "hard_set": hard_set.tolist(),
        "hard_size": int(hard_set.size),
        "train_soft": train_soft,
        "train_hard": _plain_score(head_params, blocks[train], human[np.ix_(train, train)],
                                   hard.astype(np.float32), score),
        "test_soft": _plain_score(head_params, blocks[test], h_test, mask.astype(np.float32),
                                  score),
        "test_hard": _plain_score(head_params, blocks[test], h_test, hard.astype(np.float32),
                                  score),
        "hyper": {"optimizer": "optax.adam", "learning_rate": float(learning_rate),
                  "init_logit": float(init_logit), "path_steps": int(path_steps),
                  "final_steps": int(final_steps), "patience": int(patience), "tol": float(tol),
                  "holdout": float(holdout), "seed": int(seed), "lambda_choice": "inner holdout, "
                  "warm-started path, max held-out Pearson rho"},
    }
    if greedy_set is not None:
        g = np.asarray(greedy_set, np.int64)
        both = np.intersect1d(g, hard_set).size
        union = np.union1d(g, hard_set).size
        out["overlap_greedy"] = int(both)
        out["jaccard_greedy"] = float(both / union) if union else None
    return out
