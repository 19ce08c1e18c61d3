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

from ais_jax.engine.ablation import AblationSimilarities
from ais_jax.engine.similarity import alignment_change, pearson_change


def _check_human(human: jax.Array, n: int, dtype=jnp.float32) -> jax.Array:
    """The human matrix in the similarities' dtype (float32; float64 in x64 tests)."""
    human = jnp.asarray(human, dtype)
    if human.shape != (n, n):
        raise ValueError(
            f"human matrix must be [{n}, {n}] like the similarities, got {human.shape}")
    return human


@functools.partial(jax.jit, static_argnames=("score",))
def _global_ais(full, global_delta, human, *, score):
    # score(Z) - score(Z + dZ), from dZ: exact to the scale of the (small) change.
    ais = -alignment_change(full, global_delta, human, score)  # [M]
    return jnp.where(jnp.all(global_delta == 0, axis=(1, 2)), 0.0, ais)


def global_ais(
    sims: AblationSimilarities,
    human: jax.Array,
    *,
    images: np.ndarray | None = None,
    score: str = "rho",
) -> jax.Array:
    """Global AIS of every map (SPEC §4): every image ablated.

    Args:
      sims: `ais_jax.engine.ablation.ablation_similarities` of all n images.
      human: ``[n, n]`` human similarity matrix over the same n images.
      images: index subset (e.g. a CV fold's training images); default all. Both the model
        and the human matrices are restricted to it.
      score: 'rho' (paper Eq. 1) or 'r2' (released code's CV).

    Returns:
      ``[M]`` AIS, ``score(Z, H) - score(Z^{not k}, H)``.
    """
    n = sims.full.shape[0]
    human = _check_human(human, n, sims.full.dtype)
    full, global_delta = sims.full, sims.global_delta
    if images is not None:
        images = np.asarray(images)
        if images.ndim != 1 or images.size < 3 or images.min() < 0 or images.max() >= n:
            raise ValueError(
                f"images must be >= 3 indices in [0, {n}), got shape {images.shape}"
            )
        full = full[np.ix_(images, images)]
        global_delta = global_delta[:, images][:, :, images]
        human = human[np.ix_(images, images)]
    return _global_ais(full, global_delta, human, score=score)


@jax.jit
def _per_image_ais(full, per_image_delta, human):
    n = full.shape[0]
    # others[i] = every j != i, in order: [n, n - 1]
    others = jnp.asarray(np.array([np.delete(np.arange(n), i) for i in range(n)]))
    rows = jnp.arange(n)[:, None]
    z_full = full[rows, others]  # [n, n-1]
    h = human[rows, others]  # [n, n-1]
    dz = jnp.take_along_axis(per_image_delta, others[:, None, :], axis=2)  # [n, M, n-1]
    shape = dz.shape
    # rho_i - rho_i^{not k}, from the change of row i: exact to the scale of the change.
    ais = -pearson_change(jnp.broadcast_to(z_full[:, None], shape), dz,
                          jnp.broadcast_to(h[:, None], shape))
    return jnp.where(jnp.all(dz == 0, axis=-1), 0.0, ais)


def per_image_ais(sims: AblationSimilarities, human: jax.Array) -> jax.Array:
    """Per-image AIS (SPEC §5): map k removed in image i only, rho over j != i, no squaring.

    Args:
      sims: `ais_jax.engine.ablation.ablation_similarities`.
      human: ``[n, n]`` human similarity matrix (row i is used for image i).

    Returns:
      ``[n, M]`` AIS, ``rho_i - rho_i^{not k}``.
    """
    human = _check_human(human, sims.full.shape[0], sims.full.dtype)
    return _per_image_ais(sims.full, sims.per_image_delta, human)
