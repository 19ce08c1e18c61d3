"""Greedy map selection (SPEC §4): rank maps by AIS, score nested prefixes, pick S*.

`greedy_curves` scores the embeddings with only the top-m ranked maps kept, for every m = 1..M.
Prefixes are nested, so the fc6 pre-activation of prefix m is that of prefix m-1 plus one B-wide
block product: a cumulative sum over the ranked blocks' contributions, carried across chunks of
maps by `lax.scan`; then ReLU, fc7 (one large matmul per chunk, or per image over only the fc6
units active in some prefix of the chunk: `ais_jax.engine.active_set`), ReLU, correlations and the
train/test alignments. ``method='naive'`` (mask + full head per prefix) is the reference.

A gap head (ResNet, `ais_jax.engine.heads`) needs no network call: its prefix embeddings are
the pooled maps with the unkept coordinates zeroed, and ``method='incremental'`` scores their
correlations from prefix sums over the ranked maps (`ais_jax.engine.gap`), O(M n^2) a curve.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ais_jax.engine import active_set, gap, sharding
from ais_jax.engine.ablation import (
    DEFAULT_MEMORY_BUDGET,
    choose_chunk,
    dense,
    fc6_active_fraction,
    head_dims,
    plain_head,
)
from ais_jax.engine.heads import head_family
from ais_jax.engine.similarity import alignment, check_score, corr_matrix, shifted_gram, unit_rows
from ais_jax.models.vgg16 import PRECISION

GREEDY_METHODS = ("incremental", "naive")
# Products per partial dot of the greedy grams (`shifted_gram`). Measured on the full-size
# precision problem (24 images): max R^2 error train/test 2.5e-7/4.9e-7 with 16, 2.0e-7/5.5e-7
# with 256 (the shifted rows are small, so longer partial sums cost little), ~0.3 s less a curve.
GRAM_BLOCK = 256
# Prefixes per step of a gap head's curve: the prefix sums within a step are sums of at most
# this many terms (then carried with TwoSum), and the step's [c, n, n] temporaries stay small.
GAP_CHUNK = 16


def rank_maps(ais: np.ndarray) -> np.ndarray:
    """Map indices by descending AIS; ties keep the lower index first (a stable sort).

    Equivalent to ``np.argsort(-ais, kind='stable')``: NaN AIS values rank last, in index
    order among themselves.

    Args:
      ais: ``[M]`` AIS values.

    Returns:
      ``[M]`` int order, best map first.
    """
    ais = np.asarray(ais)
    if ais.ndim != 1:
        raise ValueError(f"ais must be a 1-D [maps] vector, got shape {ais.shape}")
    return np.argsort(-ais, kind="stable")


def best_prefix(curve: np.ndarray) -> int:
    """|S*|: the number of maps kept at the best score (argmax + 1; first maximum; NaN never wins).

    Args:
      curve: ``[M]`` scores of prefixes of size 1..M.

    Returns:
      The prefix size in 1..M.
    """
    curve = np.asarray(curve, np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"curve must be a non-empty 1-D vector, got shape {curve.shape}")
    if np.all(np.isnan(curve)):
        raise ValueError(f"every score of the {curve.size}-point greedy curve is NaN")
    return int(np.nanargmax(curve)) + 1


class GreedyResult(NamedTuple):
    """One greedy curve on a train/test split.

    Attributes:
      train_curve: ``[M]`` training score of the top-m maps, m = 1..M (training images only).
      test_curve: ``[M]`` test score of the same prefixes, or None where it was not asked for.
      best_size: |S*| = `best_prefix` of the training curve.
      n_nan_train: prefixes whose training score is NaN (constant embeddings).
      n_nan_test: the same on the test images (None without the test curve).
      test_best: test score at S* (Retained), from `point_scores`.
      test_full: test score with all M maps kept (Full), from `point_scores`.
    """

    train_curve: np.ndarray
    test_curve: np.ndarray | None
    best_size: int
    n_nan_train: int
    n_nan_test: int | None
    test_best: float
    test_full: float


def _split_scores(sim, human_train, human_test, train, test, score):
    """Alignment of ``sim`` ``[..., n, n]`` on the train and test images."""
    s_train = alignment(sim[..., train[:, None], train[None, :]], human_train, score)
    s_test = alignment(sim[..., test[:, None], test[None, :]], human_test, score)
    return s_train, s_test


@functools.partial(jax.jit, static_argnames=("n", "chunk", "score", "mesh", "active"))
def _incremental_kernel(head_params, ranked, human, *, n, chunk, score, mesh, active):
    """Scores of every prefix on one image set: all ``n`` real rows of ``ranked`` against ``human``.

    ranked: ``[n_pad, M_pad, B]`` blocks in rank order (zero padded); human: ``[n, n]``.
    Returns ``[M_pad]``.
    """
    n_pad, m_pad, block = ranked.shape
    d6 = head_params["fc6"]["kernel"].shape[1]
    w6 = head_params["fc6"]["kernel"]

    def per_device(local, w6_ranked, head_params, human):
        # local: [n_loc, M_pad, B] this device's images; w6_ranked: [M_pad, B, D6]
        steps = m_pad // chunk
        xs = (
            jnp.moveaxis(local.reshape(local.shape[0], steps, chunk, block), 0, 2),
            w6_ranked.reshape(steps, chunk, block, d6),
        )

        def step(acc, x):  # acc: [n_loc, D6] fc6 pre-activation of the prefix so far
            blk, w = x  # [c, n_loc, B], [c, B, D6]
            # Prefix-major layout [c, n_loc, ...] throughout: the batched products below then
            # need no transposes (measured: the image-major layout cost 3 s more per curve).
            contrib = jnp.einsum("cnb,cbo->cno", blk, w, precision=PRECISION)
            # Prefix sums within the chunk as one small matmul (XLA's CPU cumsum is quadratic
            # and unvectorised).
            tril = jnp.tril(jnp.ones((chunk, chunk), contrib.dtype))
            pre = acc[None] + jnp.einsum("tc,cno->tno", tril, contrib, precision=PRECISION)
            hidden = jax.nn.relu(pre)  # [c, n_loc, D6]
            if active:  # per image, only the fc6 units active in some prefix of the chunk
                fc7 = active_set.grouped_product(
                    jnp.swapaxes(hidden, 0, 1), head_params["fc7"]["kernel"])  # [n_loc, c, D]
                fc7 = jnp.swapaxes(fc7, 0, 1) + head_params["fc7"]["bias"][None, None]
            else:
                fc7 = dense(hidden, head_params["fc7"])
            u = unit_rows(jax.nn.relu(fc7))  # [c, n_loc, D]
            u_all = jax.lax.all_gather(u, sharding.AXIS, axis=1, tiled=True)  # [c, n_pad, D]
            # Correlations less a constant per prefix, which the scores ignore: exact to the
            # spread of the (highly correlated) rows, see `shifted_gram`. Any reference row
            # makes the identity exact; the mean unit row of the images makes it sharpest.
            ref = jnp.einsum("i,cid->cd", weights, u_all, precision=PRECISION)  # [c, D]
            # One prefix at a time: XLA's CPU batched matmul over c small [n, D] x [D, n]
            # products, and the fusions around it, ran ~10x slower than a loop of plain ones.
            rows = jax.lax.map(
                lambda x: shifted_gram(x[0], x[1], x[2], block=GRAM_BLOCK), (u, u_all, ref)
            )  # [c, n_loc, n_pad]
            sim = jax.lax.all_gather(rows, sharding.AXIS, axis=1, tiled=True)[:, :n, :n]
            return pre[-1], alignment(sim, human, score)

        weights = (jnp.arange(n_pad) < n).astype(jnp.float32) / n  # [n_pad] real images
        acc0 = jnp.broadcast_to(head_params["fc6"]["bias"], (local.shape[0], d6))
        acc0 = jax.lax.pcast(acc0, (sharding.AXIS,), to="varying")  # per-device carry
        _, scores = jax.lax.scan(step, acc0, xs)
        # Every device holds the same (all-gathered) scores: return each copy, keep the first.
        return scores.reshape(1, -1)

    spec = PartitionSpec(sharding.AXIS)
    scores = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(spec,) + (PartitionSpec(),) * 3,
        out_specs=spec,
    )(ranked, w6, head_params, human)
    return scores[0]


@functools.partial(jax.jit, static_argnames=("chunk", "score"))
def naive_prefix_scores(
    head_params, blocks, order, sizes, train, test, human_train, human_test, *, chunk, score
):
    """The reference: for each prefix size, mask the other maps and run the whole head.

    Args:
      head_params: head parameters.
      blocks: ``[n, M, B]``.
      order: ``[M]`` ranking.
      sizes: ``[P]`` prefix sizes to score (``1..M`` for the whole curve).
      train, test: image indices.
      human_train, human_test: the human matrices on them.
      chunk: prefixes per step.
      score: 'rho' or 'r2'.

    Returns:
      (train scores ``[P]``, test scores ``[P]``).
    """
    m = blocks.shape[1]
    rank = jnp.zeros(m, jnp.int32).at[order].set(jnp.arange(m, dtype=jnp.int32))

    def one_prefix(size):
        keep = (rank < size).astype(blocks.dtype)  # [M]
        emb, _ = plain_head(head_params, blocks * keep[None, :, None])
        return _split_scores(corr_matrix(emb, shifted=True), human_train, human_test, train,
                             test, score)

    return jax.lax.map(one_prefix, sizes, batch_size=chunk)


def _gap_degenerate(x: np.ndarray, order: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``[M]`` bool: prefixes whose correlations on ``images`` are all 1 (a gap head).

    Where only one kept map is non-zero in any of the images and its values there share a
    sign, every prefix embedding is a positive multiple of one vector: every correlation is 1
    (or undefined), and the score is undefined.
    """
    ranked = x[np.ix_(images, order)]  # [n_img, M]
    live = np.any(ranked != 0, axis=0)
    count = np.cumsum(live)
    one_sign = np.all(ranked >= 0, axis=0) | np.all(ranked <= 0, axis=0)
    first = np.argmax(live) if live.any() else 0
    return (count == 1) & bool(one_sign[first])


def _check_indices(name: str, idx, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.size < 3 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be >= 3 integer image indices, got shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"{name} indices must lie in [0, {n}), got {idx.min()}..{idx.max()}")
    return idx.astype(np.int32)


def greedy_fc7_path(head_params: dict, blocks: jax.Array,
                    fc7_path: str = "auto") -> tuple[str, float | None]:
    """The fc7 path of every greedy curve on these images, decided once (one fc6 forward).

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` the unablated blocks of all the dataset's images.
      fc7_path: 'auto' (`ais_jax.engine.active_set.resolve_path` with the greedy threshold),
        'active' or 'plain'.

    Returns:
      (``'active'``, ``'plain'`` or, for a gap head (no fc7), ``'closed_form'``; the fraction
      of fc6 units active over ``blocks``, None for a gap head). Pass the path on as
      `greedy_curves`'s ``fc7_path`` (``'closed_form'`` is accepted there for gap heads).
    """
    if fc7_path not in active_set.PATHS:
        raise ValueError(f"fc7 path must be one of {active_set.PATHS}, got {fc7_path!r}")
    if head_family(head_params) == "gap":
        return "closed_form", None
    fraction = fc6_active_fraction(head_params, blocks)
    return ("active" if active_set.resolve_path(fc7_path, fraction, "greedy") else "plain",
            fraction)


def greedy_curves(
    head_params: dict,
    blocks: jax.Array,
    order: np.ndarray,
    human: jax.Array,
    *,
    train: np.ndarray,
    test: np.ndarray,
    score: str = "r2",
    method: str = "incremental",
    chunk_maps: int | None = None,
    memory_budget_bytes: int | None = None,
    mesh: Mesh | None = None,
    fc7_path: str = "auto",
    test_curve: bool = True,
) -> GreedyResult:
    """Training curve of the nested prefixes ``S_m`` of ``order``, m = 1..M, and test scores.

    The training curve (which picks S*) is computed on the training images alone; the test
    score at S* and at all M maps (Full) by two masked head passes over the test images
    (`point_scores`), whether or not the whole test curve is also computed: S* and both test
    scores are the same numbers with ``test_curve`` on or off.

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` fc6 input blocks of all n images.
      order: ``[M]`` map ranking, best first (`rank_maps`).
      human: ``[n, n]`` human similarity matrix over the same images.
      train: training image indices (the curve that picks S*).
      test: test image indices.
      score: 'r2' (released code's CV) or 'rho'.
      method: 'incremental' (fc6 prefix sums, sharded over images; a gap head: the closed
        form of `ais_jax.engine.gap`, single device) or 'naive' (mask + full head per prefix;
        single device; the reference).
      chunk_maps: prefixes per step (default: from the memory budget).
      memory_budget_bytes: per-device budget for one step's temporaries.
      mesh: 1-D device mesh for 'incremental'; None = all local devices (a gap head's
        prefix sums run on one device).
      fc7_path: 'auto' (the exact active-set fc7 on CPU where fc6 is sparse enough for it to
        pay, `greedy_fc7_path`: one fc6 forward of all images per call; callers that score
        many folds decide once with `greedy_fc7_path` and pass its path), 'active' or
        'plain'; 'incremental' only ('closed_form' for a gap head: no fc7).
      test_curve: also score every prefix on the test images (for plots and comparisons;
        20 % more head rows a fold at 5 folds). Off: ``test_curve`` is None.

    Returns:
      `GreedyResult`; NaN scores are kept, counted, and never win. A prefix whose maps are all
      zero in every image of a split scores exactly NaN there (its embeddings are identical);
      for a gap head also a prefix with one non-zero map there (every correlation is 1).
    """
    check_score(score)
    if method not in GREEDY_METHODS:
        raise ValueError(f"method must be one of {GREEDY_METHODS}, got {method!r}")
    gap_head = head_family(head_params) == "gap"
    if fc7_path not in active_set.PATHS + (("closed_form",) if gap_head else ()):
        raise ValueError(f"fc7 path must be one of {active_set.PATHS}, got {fc7_path!r}")
    blocks = jnp.asarray(blocks, jnp.float32)
    dims = head_dims(head_params, blocks)
    order = np.asarray(order)
    if order.shape != (dims.maps,) or not np.array_equal(np.sort(order), np.arange(dims.maps)):
        raise ValueError(
            f"order must be a permutation of the {dims.maps} maps, got shape {order.shape}")
    human = jnp.asarray(human, jnp.float32)
    if human.shape != (dims.n, dims.n):
        raise ValueError(f"human matrix must be [{dims.n}, {dims.n}], got {human.shape}")
    train, test = _check_indices("train", train, dims.n), _check_indices("test", test, dims.n)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget_bytes is None else memory_budget_bytes
    active = False
    if method == "incremental" and not gap_head:
        # Decided once for both curves, from all the images (`greedy_fc7_path`).
        decided = greedy_fc7_path(head_params, blocks)[0] if fc7_path == "auto" else fc7_path
        active = decided == "active"

    def curve(images):
        return _curve(head_params, blocks, order, human, images, score=score, method=method,
                      chunk_maps=chunk_maps, budget=budget, mesh=mesh, active=active)

    train_curve = curve(train)
    best = best_prefix(train_curve)
    test_best, test_full = point_scores(head_params, blocks, order, human, test,
                                        np.array([best, dims.maps]), score=score)
    test_scores = curve(test) if test_curve else None
    return GreedyResult(
        train_curve,
        test_scores,
        best,
        int(np.isnan(train_curve).sum()),
        None if test_scores is None else int(np.isnan(test_scores).sum()),
        float(test_best),
        float(test_full),
    )


def _undefined(blocks: jax.Array, order: np.ndarray, images: np.ndarray,
               gap_head: bool) -> np.ndarray:
    """``[M]`` bool: prefixes whose score on ``images`` is undefined (set to exactly NaN).

    A prefix whose kept blocks are all zero in every image gives identical embeddings;
    round-off would turn its score into noise. For a gap head also `_gap_degenerate`.
    """
    zero = np.asarray(jnp.all(blocks[images] == 0, axis=-1))[:, order]  # [n_img, M]
    undefined = ~(np.cumsum(~zero, axis=1) > 0).any(axis=0)
    if gap_head:
        undefined |= _gap_degenerate(np.asarray(gap.embeddings(blocks)), order, images)
    return undefined


def _curve(head_params, blocks, order, human, images, *, score, method, chunk_maps, budget,
           mesh, active) -> np.ndarray:
    """``[M]`` float64 scores of every prefix on one image set (``images``, >= 3 indices)."""
    m = len(order)
    sub = blocks[images]  # [n_img, M, B]
    human_sub = human[np.ix_(images, images)]
    dims = head_dims(head_params, sub)
    everyone = jnp.arange(dims.n)
    family = head_family(head_params)
    if method == "naive":
        per_map = 8 * dims.n * (dims.maps * dims.block + dims.fc6 + 2 * dims.embed)
        chunk, _ = choose_chunk(dims.maps, per_map, memory_budget_bytes=budget,
                                chunk_maps=chunk_maps)
        scores, _ = naive_prefix_scores(
            head_params, sub, jnp.asarray(order), jnp.arange(1, m + 1), everyone, everyone,
            human_sub, human_sub, chunk=chunk, score=score)
    elif family == "gap":
        # `gap.prefix_scores` scores two index sets; both are this one (the second is cheap:
        # the correlations are shared, only the alignment is repeated).
        scores, _ = gap.prefix_scores(
            gap.embeddings(sub), jnp.asarray(order), everyone, everyone, human_sub, human_sub,
            chunk=min(chunk_maps or GAP_CHUNK, m), score=score)
    else:
        mesh = sharding.resolve_mesh(mesh)
        n_dev = mesh.devices.size
        n_pad = sharding.padded_size(dims.n, n_dev)
        per_map = 8 * (n_pad // n_dev) * (dims.fc6 + 2 * dims.embed + n_pad)
        if active and chunk_maps is None:  # the gather pays only on enough rows per image
            chunk_maps = active_set.GROUP_ROWS
        chunk, steps = choose_chunk(dims.maps, per_map, memory_budget_bytes=budget,
                                    chunk_maps=chunk_maps)
        # Padded maps are zero blocks (they add nothing); padded images are dropped before
        # any correlation.
        ranked = sharding.pad_axis(sub[:, order], steps * chunk, axis=1)
        ranked = sharding.pad_axis(ranked, n_pad, axis=0)
        w6 = head_params["fc6"]["kernel"].reshape(dims.maps, dims.block, dims.fc6)[order]
        w6 = sharding.pad_axis(w6, steps * chunk, axis=0).reshape(-1, dims.fc6)
        scores = _incremental_kernel(
            {**head_params, "fc6": {**head_params["fc6"], "kernel": w6}}, ranked, human_sub,
            n=dims.n, chunk=chunk, score=score, mesh=mesh, active=active)
    out = np.asarray(scores[:m], np.float64)
    out[_undefined(blocks, order, images, family == "gap")] = np.nan
    return out


def point_scores(head_params: dict, blocks: jax.Array, order: np.ndarray, human: jax.Array,
                 images: np.ndarray, sizes: np.ndarray, *, score: str) -> np.ndarray:
    """Scores on ``images`` of a few prefix sizes of ``order`` (masked head passes, any family).

    What a fold needs on its test images without the test curve: the score at S* and at all
    maps. Each size is one plain forward of ``len(images)`` images with the other maps zeroed.

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` all images.
      order: ``[M]`` ranking.
      human: ``[n, n]``.
      images: >= 3 image indices.
      sizes: ``[P]`` prefix sizes in 1..M.
      score: 'r2' or 'rho'.

    Returns:
      ``[P]`` float64; exactly NaN where the prefix's score is undefined on ``images``.
    """
    images = _check_indices("images", images, blocks.shape[0])
    sizes = np.asarray(sizes)
    sub = jnp.asarray(blocks, jnp.float32)[images]
    human_sub = jnp.asarray(human, jnp.float32)[np.ix_(images, images)]
    everyone = jnp.arange(len(images))
    scores, _ = naive_prefix_scores(head_params, sub, jnp.asarray(order), jnp.asarray(sizes),
                                    everyone, everyone, human_sub, human_sub, chunk=1,
                                    score=score)
    out = np.asarray(scores, np.float64)
    undefined = _undefined(jnp.asarray(blocks, jnp.float32), np.asarray(order), images,
                           head_family(head_params) == "gap")
    out[undefined[sizes - 1]] = np.nan
    return out
