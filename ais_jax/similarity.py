"""Representational similarity and second-order isomorphism (SPEC §3).

`corr_matrix` is the model similarity ``Z = corrcoef(C)`` (Pearson across features, per pair
of images); `alignment` scores it against a human matrix on the upper triangles (diagonal
excluded): ``rho`` (the 2OI) or ``r2 = rho ** 2``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.models.vgg16 import PRECISION

SCORES = ("rho", "r2")


def unit_rows(x: jax.Array) -> jax.Array:
    """Centres and scales the last axis to unit norm, so that dot products are correlations.

    Args:
      x: ``[..., d]``.

    Returns:
      ``[..., d]``; a constant row becomes NaN (its correlation is undefined), as in
      ``np.corrcoef``.
    """
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    return centred / jnp.linalg.norm(centred, axis=-1, keepdims=True)


def corr_matrix(emb: jax.Array) -> jax.Array:
    """Pearson correlation between every pair of rows (``np.corrcoef`` of the rows).

    Args:
      emb: ``[..., n, d]`` embeddings.

    Returns:
      ``[..., n, n]`` correlations.
    """
    u = unit_rows(emb)
    return jnp.einsum("...id,...jd->...ij", u, u, precision=PRECISION)


def upper_triangle(m: jax.Array) -> jax.Array:
    """The strict upper triangle (``k=1``) in row-major order.

    Args:
      m: ``[..., n, n]``.

    Returns:
      ``[..., n * (n - 1) / 2]``.
    """
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"expected square matrices [..., n, n], got shape {m.shape}")
    rows, cols = np.triu_indices(m.shape[-1], k=1)
    return m[..., rows, cols]


def pearson(x: jax.Array, y: jax.Array) -> jax.Array:
    """Pearson correlation over the last axis (broadcasting the leading axes).

    Args:
      x: ``[..., p]``.
      y: ``[..., p]``.

    Returns:
      ``[...]``; NaN where either side is constant.
    """
    return jnp.sum(unit_rows(x) * unit_rows(y), axis=-1)


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")


def alignment(model_sim: jax.Array, human: jax.Array, score: str = "rho") -> jax.Array:
    """Second-order isomorphism of a model similarity matrix with a human one (SPEC §3).

    Args:
      model_sim: ``[..., n, n]`` model similarity (e.g. `corr_matrix` of embeddings).
      human: ``[n, n]`` human *similarity* matrix (convert dissimilarities first).
      score: ``'rho'`` (Pearson of the upper triangles) or ``'r2'`` (its square).

    Returns:
      ``[...]`` scores.
    """
    _check_score(score)
    if human.shape != model_sim.shape[-2:]:
        raise ValueError(
            f"human matrix shape {human.shape} does not match model similarity "
            f"shape {model_sim.shape[-2:]}"
        )
    hu = upper_triangle(human)
    zu = upper_triangle(model_sim)
    rho = pearson(zu, jnp.broadcast_to(hu, zu.shape))
    return rho if score == "rho" else rho**2
