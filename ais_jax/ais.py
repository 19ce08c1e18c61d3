"""Alignment Importance Scores from ablation similarities (SPEC §4 global, §5 per image).

Both are differences ``score(full) - score(ablated)``: positive = the map helps alignment with
the human matrix. Where the ablated similarities equal the full ones exactly (a map that is
zero in every image, or in image i for per-image AIS) the AIS is exactly 0 by construction,
not a round-off residue.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.ablation import AblationSimilarities
from ais_jax.similarity import alignment, pearson


def _check_human(human: jax.Array, n: int) -> jax.Array:
    human = jnp.asarray(human, jnp.float32)
    if human.shape != (n, n):
        raise ValueError(f"human matrix must be [{n}, {n}] like the similarities, got {human.shape}")
    return human


@functools.partial(jax.jit, static_argnames=("score",))
def _global_ais(full, global_, human, *, score):
    base = alignment(full, human, score)
    ablated = alignment(global_, human, score)  # [M]
    same = jnp.all(global_ == full[None], axis=(1, 2))
    return jnp.where(same, 0.0, base - ablated)


def global_ais(
    sims: AblationSimilarities,
    human: jax.Array,
    *,
    images: np.ndarray | None = None,
    score: str = "rho",
) -> jax.Array:
    """Global AIS of every map (SPEC §4): every image ablated.

    Args:
      sims: `ais_jax.ablation.ablation_similarities` of all n images.
      human: ``[n, n]`` human similarity matrix over the same n images.
      images: index subset (e.g. a CV fold's training images); default all. Both the model
        and the human matrices are restricted to it.
      score: 'rho' (paper Eq. 1) or 'r2' (released code's CV).

    Returns:
      ``[M]`` AIS, ``score(Z, H) - score(Z^{not k}, H)``.
    """
    n = sims.full.shape[0]
    human = _check_human(human, n)
    full, global_ = sims.full, sims.global_
    if images is not None:
        images = np.asarray(images)
        if images.ndim != 1 or images.size < 3 or images.min() < 0 or images.max() >= n:
            raise ValueError(
                f"images must be >= 3 indices in [0, {n}), got shape {images.shape}"
            )
        full = full[np.ix_(images, images)]
        global_ = global_[:, images][:, :, images]
        human = human[np.ix_(images, images)]
    return _global_ais(full, global_, human, score=score)


@jax.jit
def _per_image_ais(full, per_image, human):
    n = full.shape[0]
    # others[i] = every j != i, in order: [n, n - 1]
    others = jnp.asarray(np.array([np.delete(np.arange(n), i) for i in range(n)]))
    rows = jnp.arange(n)[:, None]
    z_full = full[rows, others]  # [n, n-1]
    h = human[rows, others]  # [n, n-1]
    z_abl = jnp.take_along_axis(per_image, others[:, None, :], axis=2)  # [n, M, n-1]
    base = pearson(z_full, h)  # [n]
    ablated = pearson(z_abl, jnp.broadcast_to(h[:, None], z_abl.shape))  # [n, M]
    same = jnp.all(z_abl == z_full[:, None], axis=-1)
    return jnp.where(same, 0.0, base[:, None] - ablated)


def per_image_ais(sims: AblationSimilarities, human: jax.Array) -> jax.Array:
    """Per-image AIS (SPEC §5): map k removed in image i only, rho over j != i, no squaring.

    Args:
      sims: `ais_jax.ablation.ablation_similarities`.
      human: ``[n, n]`` human similarity matrix (row i is used for image i).

    Returns:
      ``[n, M]`` AIS, ``rho_i - rho_i^{not k}``.
    """
    return _per_image_ais(sims.full, sims.per_image, _check_human(human, sims.full.shape[0]))
