"""Representational similarity and second-order isomorphism (SPEC §3), with careful sums.

`corr_matrix` is the model similarity ``Z = corrcoef(C)`` (Pearson across features, per pair
of images); `alignment` scores it against a human matrix on the upper triangles (diagonal
excluded): ``rho`` (the 2OI) or ``r2 = rho ** 2``. `alignment_change` scores a change of the
model similarity, ``score(Z + dZ) - score(Z)``, from ``dZ`` itself, which is what AIS needs.

Why the sums here are written by hand: AIS values are differences of correlations of order
1e-4 and must be exact to ~1e-6 (SPEC §2). The correlation of two 4096-long unit rows of
highly correlated embeddings (mean correlation 0.6-0.9) is a long sum of mostly positive
products, and XLA's CPU float32 dot and reduce accumulate it sequentially: the error grows
with the length (measured on 24 full-size embeddings, mean correlation 0.87: 6.6e-6 for the
4096-long dot). Summing in blocks of 16 and then summing the block sums the same way
(`blocked_sum`, `gram`) keeps every partial sum short: 1.2e-7 for the same dot, at ~2x the
cost of a plain dot (still small next to the head's matmuls). float64 accumulation is not an
option inside jit without enabling x64 globally, and compensated (two-sum) dots cost ~4x.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.models.vgg16 import PRECISION

SCORES = ("rho", "r2")

# Terms per partial sum. Measured max error of the 4096-long dot of unit rows (mean
# correlation 0.87) against float64: blocks of 16 -> 1.2e-7, 32 -> 2.4e-7, 64 -> 3.7e-7,
# unblocked -> 6.6e-6; the error of a sequential float32 sum grows linearly with its length.
BLOCK = 16


def _pad_to_blocks(x: jax.Array, block: int) -> jax.Array:
    pad = (-x.shape[-1]) % block
    if pad:  # zeros change no sum
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return x


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``a + b`` and its exact rounding error (Knuth's TwoSum; XLA keeps float ops unfused)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _compensated_sum(x: jax.Array) -> jax.Array:
    """Sequential sum over the (short) last axis with the rounding errors carried along."""
    total, error = x[..., 0], jnp.zeros_like(x[..., 0])
    for k in range(1, x.shape[-1]):
        total, e = _two_sum(total, x[..., k])
        error = error + e
    return total + error


def blocked_sum(x: jax.Array, axis: int = -1, *, compensated: bool = True) -> jax.Array:
    """Float32 sum over ``axis`` as a tree of `BLOCK`-long sums.

    The rounding error of a sequential float32 sum grows with the number of terms; here no
    partial sum has more than `BLOCK` terms (a 4096-long axis is summed in three levels), and
    with ``compensated`` each level also carries its rounding errors (TwoSum), which makes the
    sum exact to about the rounding of its result. Measured on norms of 4096-long rows: plain
    XLA sum ~1e-6 relative, blocked ~1e-7, blocked and compensated ~6e-8.

    Args:
      x: ``[..., d, ...]``.
      axis: the axis to sum.
      compensated: carry the rounding errors (costs ~6 flops a term; use it where the array
        is not the largest of the computation).

    Returns:
      ``x`` summed over ``axis``.
    """
    x = jnp.moveaxis(x, axis, -1)
    reduce = _compensated_sum if compensated else functools.partial(jnp.sum, axis=-1)
    while x.shape[-1] > BLOCK:
        x = _pad_to_blocks(x, BLOCK)
        x = reduce(x.reshape(*x.shape[:-1], -1, BLOCK))
    return reduce(x)


def gram(x: jax.Array, y: jax.Array, *, compensated: bool = False, block: int = BLOCK
         ) -> jax.Array:
    """``x @ y^T`` over the last axis with blocked accumulation (see module docstring).

    The products are summed in `BLOCK`-long dots (one batched matmul), then their partial
    sums by `blocked_sum`.

    Args:
      x: ``[..., n, d]``.
      y: ``[..., m, d]`` (leading axes broadcast against ``x``'s).
      compensated: sum the partial dots with TwoSum too (~8x the cost of a plain dot; the
        off-diagonal error of unit rows' correlations drops from ~1e-7 to ~8e-8).
      block: products per partial dot (its sequential error grows with it, its cost falls).

    Returns:
      ``[..., n, m]``: ``out[..., i, j] = sum_d x[..., i, d] * y[..., j, d]``.
    """
    x, y = _pad_to_blocks(x, block), _pad_to_blocks(y, block)
    xb = x.reshape(*x.shape[:-1], -1, block)  # [..., n, d / block, block]
    yb = y.reshape(*y.shape[:-1], -1, block)
    partial = jnp.einsum("...ibk,...jbk->...ijb", xb, yb, precision=PRECISION)
    return blocked_sum(partial, compensated=compensated)


def unit_rows(x: jax.Array) -> jax.Array:
    """Centres and scales the last axis to unit norm, so that dot products are correlations.

    Args:
      x: ``[..., d]``.

    Returns:
      ``[..., d]``; a constant row becomes NaN (its correlation is undefined), as in
      ``np.corrcoef``.
    """
    centred = x - (blocked_sum(x) / x.shape[-1])[..., None]
    unit = centred / jnp.sqrt(blocked_sum(centred * centred))[..., None]
    # The float32 norm is itself off by up to ~1e-7 (its rounding), which would scale every
    # correlation of the row by that much. One Newton step on |u|^2 = 1, with the correction
    # applied per element, removes it: (|u|^2 - 1) / 2 is tiny and exactly computable.
    excess = 0.5 * (blocked_sum(unit * unit) - 1.0)
    return unit - unit * excess[..., None]


def unit_rows_change(x: jax.Array, dx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`unit_rows` of ``x`` and its change when ``x`` becomes ``x + dx``, computed from ``dx``.

    With ``c``/``dc`` the centred ``x``/``dx``: ``|c + dc|^2 = |c|^2 + g``,
    ``g = 2 c.dc + dc.dc``, and ``1/|c + dc| - 1/|c| = -g / (|c| |c + dc| (|c| + |c + dc|))``, so
    ``unit(x + dx) - unit(x) = dc / |c + dc| + c (1/|c + dc| - 1/|c|)``. Nothing large is
    subtracted: the error of the change is relative to the change (``dx == 0`` gives exactly
    0), which is what lets correlation *differences* be exact.

    Args:
      x: ``[..., d]`` baseline rows.
      dx: ``[..., d]`` changes (``x`` broadcasts against it).

    Returns:
      (``unit_rows(x)`` broadcast to ``dx``'s shape, its change ``[..., d]``).
    """
    x, dx = jnp.broadcast_arrays(x, dx)
    d = x.shape[-1]
    # Plain blocked sums suffice: their relative errors (~1e-7) scale the change, not add to it.
    total = functools.partial(blocked_sum, compensated=False)
    c = x - (total(x) / d)[..., None]
    dc = dx - (total(dx) / d)[..., None]
    norm = jnp.sqrt(total(c * c))
    growth = 2 * total(c * dc) + total(dc * dc)
    norm_new = jnp.sqrt(norm * norm + growth)
    inv_change = -growth / (norm * norm_new * (norm + norm_new))
    return c / norm[..., None], dc / norm_new[..., None] + c * inv_change[..., None]


def shifted_gram(u: jax.Array, v: jax.Array, ref: jax.Array, *, block: int = BLOCK
                 ) -> jax.Array:
    """``u_i . v_j - ref . ref`` for rows near a common ``ref``, exact to the rows' spread.

    With ``u_i = ref + a_i`` and ``v_j = ref + b_j``:
    ``u_i . v_j - ref . ref = a_i . b_j + ref . a_i + ref . b_j``. For highly correlated unit
    rows (correlations ~0.9) and ``ref`` their mean, ``a`` and ``b`` are small, so every sum
    here is of small terms, and the result (the correlations less a constant ~0.9) keeps ~8x
    more float32 digits than the correlations themselves. Pearson-based scores ignore the
    constant.

    Args:
      u: ``[..., n, d]``.
      v: ``[..., m, d]``.
      ref: ``[..., d]`` any reference row (the identity is exact for every ``ref``).
      block: products per partial dot of `gram`.

    Returns:
      ``[..., n, m]``.
    """
    a, b = u - ref[..., None, :], v - ref[..., None, :]
    ra = blocked_sum(a * ref[..., None, :])  # [..., n]
    rb = blocked_sum(b * ref[..., None, :])  # [..., m]
    return gram(a, b, block=block) + (ra[..., :, None] + rb[..., None, :])


def corr_matrix(emb: jax.Array, *, shifted: bool = False) -> jax.Array:
    """Pearson correlation between every pair of rows (``np.corrcoef`` of the rows).

    Args:
      emb: ``[..., n, d]`` embeddings.
      shifted: return the correlations less one constant per matrix (the squared norm of the
        rows' mean unit row): identical Pearson scores (`alignment`), ~8x more exact for
        highly correlated rows (see `shifted_gram`).

    Returns:
      ``[..., n, n]`` correlations (or shifted correlations).
    """
    u = unit_rows(emb)
    ref = blocked_sum(u, axis=-2) / u.shape[-2]  # [..., d]
    z = shifted_gram(u, u, ref)
    return z if shifted else z + blocked_sum(ref * ref)[..., None, None]


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
    return blocked_sum(unit_rows(x) * unit_rows(y))


def pearson_change(x: jax.Array, dx: jax.Array, y: jax.Array) -> jax.Array:
    """``pearson(x + dx, y) - pearson(x, y)``, computed from ``dx`` so that it stays exact.

    With ``c`` the centred ``x``, ``dc`` the centred ``dx`` and ``h`` the unit-centred ``y``,
    ``a = c.h`` and ``da = dc.h``::

        pearson(x + dx, y) - pearson(x, y) = (a + da) / |c + dc| - a / |c|
                                           = (da |c| - a (|c + dc| - |c|)) / (|c| |c + dc|)
        |c + dc| - |c| = (2 c.dc + dc.dc) / (|c + dc| + |c|)

    Every term that is subtracted is small with ``dx``, so the rounding error is relative to
    the change, not to the correlations (forming ``x + dx`` in float32 and correlating it
    would lose ~1e-7 of ``x``'s scale, i.e. ~1e-5 of a correlation whose inputs spread by
    only ~0.03). ``dx == 0`` gives exactly 0.

    Args:
      x: ``[..., p]`` baseline.
      dx: ``[..., p]`` change of ``x``.
      y: ``[..., p]`` fixed partner (e.g. the human similarities).

    Returns:
      ``[...]``.
    """
    x, dx, y = jnp.broadcast_arrays(x, dx, y)
    p = x.shape[-1]
    c = x - (blocked_sum(x) / p)[..., None]
    dc = dx - (blocked_sum(dx) / p)[..., None]
    h = unit_rows(y)
    norm = jnp.sqrt(blocked_sum(c * c))
    a = blocked_sum(c * h)
    da = blocked_sum(dc * h)
    growth = 2 * blocked_sum(c * dc) + blocked_sum(dc * dc)  # |c + dc|^2 - |c|^2
    norm_new = jnp.sqrt(norm * norm + growth)
    norm_change = growth / (norm_new + norm)  # |c + dc| - |c|
    return (da * norm - a * norm_change) / (norm * norm_new)


def check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")


def _check_shapes(model_sim: jax.Array, human: jax.Array) -> None:
    if human.shape != model_sim.shape[-2:]:
        raise ValueError(
            f"human matrix shape {human.shape} does not match model similarity "
            f"shape {model_sim.shape[-2:]}"
        )


def alignment(model_sim: jax.Array, human: jax.Array, score: str = "rho") -> jax.Array:
    """Second-order isomorphism of a model similarity matrix with a human one (SPEC §3).

    Args:
      model_sim: ``[..., n, n]`` model similarity (e.g. `corr_matrix` of embeddings).
      human: ``[n, n]`` human *similarity* matrix (convert dissimilarities first).
      score: ``'rho'`` (Pearson of the upper triangles) or ``'r2'`` (its square).

    Returns:
      ``[...]`` scores.
    """
    check_score(score)
    _check_shapes(model_sim, human)
    hu = upper_triangle(human)
    zu = upper_triangle(model_sim)
    rho = pearson(zu, jnp.broadcast_to(hu, zu.shape))
    return rho if score == "rho" else rho**2


def alignment_change(
    model_sim: jax.Array, change: jax.Array, human: jax.Array, score: str = "rho"
) -> jax.Array:
    """``alignment(model_sim + change) - alignment(model_sim)``, exact to the change's scale.

    Args:
      model_sim: ``[n, n]`` baseline model similarity.
      change: ``[..., n, n]`` changes of it (e.g. one per ablated map).
      human: ``[n, n]`` human similarity matrix.
      score: ``'rho'`` or ``'r2'`` (``r2' - r2 = (rho' - rho)(rho' + rho)``).

    Returns:
      ``[...]`` score changes.
    """
    check_score(score)
    _check_shapes(model_sim, human)
    _check_shapes(change, human)
    zu, hu = upper_triangle(model_sim), upper_triangle(human)
    d_rho = pearson_change(zu, upper_triangle(change), hu)
    if score == "rho":
        return d_rho
    rho = pearson(zu, hu)
    return d_rho * (2 * rho + d_rho)
