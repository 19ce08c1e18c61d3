"""Closed forms of every ablation of a global-average-pool head (SPEC §12): no network call.

A gap head's embedding of image i is its pooled maps, ``x_i = blocks[i, :, 0]`` ``[M]``
(ResNet-50: M = 2048), so zeroing map k sets coordinate k of ``x_i`` to 0 and changes nothing
else. The correlations of SPEC §3 are Pearson correlations over all M coordinates, the zeroed
ones included. Everything below follows from that, in O(M n^2) with no long sums beyond those of
the unablated correlation matrix.

Notation (per image i): ``xbar_i`` the mean of ``x_i`` over the M coordinates,
``c_i = x_i - xbar_i`` (centred), ``|c_i|`` its norm, ``u_i = c_i / |c_i|`` (unit row),
``z_ij = u_i . u_j`` (the unablated correlation), and for map k ``a_ik = x_ik / |c_i|``.

**One coordinate removed.** ``x_i - x_ik e_k`` has mean ``xbar_i - x_ik / M``, so its centred row
is ``c_i - x_ik (e_k - 1/M)``. With ``sum(c_j) = 0``, ``c_i . (e_k - 1/M) = c_ik`` and
``|e_k - 1/M|^2 = 1 - 1/M``:

    c'_i . c_j  = c_i . c_j - x_ik c_jk
    |c'_i|^2    = |c_i|^2 - 2 x_ik c_ik + x_ik^2 (1 - 1/M) = |c_i|^2 (1 + g_ik)
    g_ik        = a_ik (a_ik (1 - 1/M) - 2 u_ik),      s_ik = sqrt(1 + g_ik)

*Per image* (map k removed in image i only; SPEC §5): ``z'_ij = (z_ij - a_ik u_jk) / s_ik``, and
as a change (``s - 1 = g / (1 + s)``):

    z'_ij - z_ij = (-z_ij g_ik / (1 + s_ik) - a_ik u_jk) / s_ik

*Global* (map k removed in every image; SPEC §4): ``c'_i . c'_j = c_i . c_j - x_ik c_jk -
x_jk c_ik + x_ik x_jk (1 - 1/M)``, so with ``S = s_ik s_jk`` and
``S - 1 = (g_ik + g_jk + g_ik g_jk) / (1 + S)``:

    z'_ij - z_ij = (dN_ij - z_ij (S - 1)) / S,
    dN_ij = -a_ik u_jk - a_jk u_ik + a_ik a_jk (1 - 1/M)

Every term is small with ``a_ik`` (~1/sqrt(M)): the changes are computed, never the ablated
correlations, so their float32 rounding is relative to the change (SPEC §2's rule), and a map
with ``x_ik = 0`` gives a change of exactly 0. Per-image and global AIS then follow from these
changes exactly as for any head (`ais_jax.engine.ais`).

**Greedy prefixes** (SPEC §4): prefix ``P`` keeps the first s maps of the ranking, the others
are 0 and still count among the M coordinates. Write ``x_i = r + d_i`` with ``r`` a reference
row (the mean row over the images) and, summing over ``t in P`` only,
``a = sum r_t``, ``A = sum r_t^2``, ``b_i = sum d_it``, ``B_i = sum r_t d_it``,
``D_ij = sum d_it d_jt``. The covariance over the M coordinates of the prefix embeddings is

    cov_ij = K + beta_i + beta_j + delta_ij,   K = A - a^2 / M,  beta_i = B_i - a b_i / M,
                                               delta_ij = D_ij - b_i b_j / M

and ``var_i = cov_ii``. With ``kappa = K + mean_i delta_ii`` (the mean variance: the betas sum
to 0), ``q_ij = (beta_i + beta_j + delta_ij - mean delta) / kappa``,
``eps_i = q_ii`` and ``t_ij = sqrt((1 + eps_i)(1 + eps_j))``:

    z_ij - 1 = (q_ij - (eps_i + eps_j + eps_i eps_j) / (1 + t_ij)) / t_ij

Pearson scores ignore the constant 1, and ``q`` and ``eps`` are built from the images'
*deviations* from the reference row, so the correlations less 1 keep their float32 digits where
the correlations themselves (~0.9) would round them to ~6e-8 (the role `shifted_gram` plays for
the other family). The sums over ``P`` are prefix sums over the ranked maps, carried across
chunks with TwoSum (`prefix_sums`), so each is exact to about its own rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ais_jax.engine import sharding
from ais_jax.engine.similarity import alignment, blocked_sum, corr_matrix
from ais_jax.models.vgg16 import PRECISION


def embeddings(blocks: jax.Array) -> jax.Array:
    """``[n, M, 1]`` blocks of a gap head -> ``[n, M]`` embeddings (the pooled maps)."""
    return blocks[..., 0]


def row_terms(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Per-(image, map) terms of one-coordinate removal (module docstring).

    Args:
      x: ``[n, M]`` embeddings.

    Returns:
      (u, a, g, s), each ``[n, M]``: unit rows, ``x / |c|``, the relative change of the
      squared norm ``g`` and ``s = sqrt(1 + g)``. ``x_ik = 0`` gives ``a = g = 0``, ``s = 1``.
    """
    m = x.shape[-1]
    c = x - (blocked_sum(x) / m)[..., None]
    norm = jnp.sqrt(blocked_sum(c * c))[..., None]
    u, a = c / norm, x / norm
    g = a * (a * (1.0 - 1.0 / m) - 2.0 * u)
    return u, a, g, jnp.sqrt(1.0 + g)


def per_image_delta(terms, full: jax.Array) -> jax.Array:
    """``[n, c, n]``: ``corr(x_i without map k, x_j) - z_ij`` for the maps of ``terms``.

    Args:
      terms: `row_terms` restricted to c maps (each ``[n, c]``).
      full: ``[n, n]`` unablated correlations.
    """
    u, a, g, s = terms
    dz = (-full[:, None, :] * (g / (1.0 + s))[:, :, None]
          - a[:, :, None] * u.T[None, :, :]) / s[:, :, None]
    return jnp.where((a == 0)[:, :, None], 0.0, dz)


def global_delta(terms, full: jax.Array, m: int) -> jax.Array:
    """``[c, n, n]``: ``corr`` with map k removed in every image, less ``z``, for c maps.

    Args:
      terms: `row_terms` restricted to c maps (each ``[n, c]``).
      full: ``[n, n]`` unablated correlations.
      m: M, the number of coordinates.
    """
    u, a, g, s = (t.T for t in terms)  # [c, n]
    au = a[:, :, None] * u[:, None, :]  # [c, i, j]: a_ik u_jk
    d_norm = a[:, :, None] * a[:, None, :] * (1.0 - 1.0 / m) - au - jnp.swapaxes(au, 1, 2)
    big_s = s[:, :, None] * s[:, None, :]
    growth = (g[:, :, None] + g[:, None, :] + g[:, :, None] * g[:, None, :]) / (1.0 + big_s)
    dz = (d_norm - full[None] * growth) / big_s
    zero = a == 0
    return jnp.where(zero[:, :, None] & zero[:, None, :], 0.0, dz)


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``a + b`` and its exact rounding error (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def prefix_sums(carry: tuple, terms: tuple) -> tuple[tuple, tuple]:
    """Inclusive prefix sums of one chunk of terms, continuing compensated running totals.

    Args:
      carry: tuple of (hi, lo) pairs, the running totals before this chunk (each ``[...]``).
      terms: tuple of the matching ``[c, ...]`` terms of the chunk's c maps, in ranking order.

    Returns:
      (new carry, sums: tuple of ``[c, ...]`` totals after each of the c maps). Within the
      chunk the prefix sums are one small triangular product (c terms at most); across chunks
      TwoSum carries each total's rounding error, so a total over thousands of maps is exact
      to about its own float32 rounding.
    """
    new_carry, sums = [], []
    for (hi, lo), x in zip(carry, terms, strict=True):
        c = x.shape[0]
        tril = jnp.tril(jnp.ones((c, c), x.dtype))
        part = jnp.einsum("tc,c...->t...", tril, x, precision=PRECISION)
        new_hi, err = _two_sum(hi[None], part)
        new_lo = lo[None] + err
        new_carry.append((new_hi[-1], new_lo[-1]))
        sums.append(new_hi + new_lo)
    return tuple(new_carry), tuple(sums)


def prefix_corr_minus_one(sums, m: int, live: jax.Array) -> jax.Array:
    """Correlations less 1 of the prefix embeddings, from the prefix sums (module docstring).

    Args:
      sums: (a ``[c]``, A ``[c]``, b ``[c, n]``, B ``[c, n]``, D ``[c, n, n]``) prefix sums.
      m: M, the number of coordinates the correlations run over.
      live: ``[c, n]`` bool, image i has a non-zero kept map; where not, its row of the
        prefix embeddings is constant and its correlations are NaN (as ``np.corrcoef``).

    Returns:
      ``[c, n, n]`` ``corr - 1`` of each prefix.
    """
    a, big_a, b, big_b, big_d = sums
    k = big_a - a * a / m  # [c]
    beta = big_b - a[:, None] * b / m  # [c, n]
    delta = big_d - b[:, :, None] * b[:, None, :] / m  # [c, n, n]
    diag = jnp.diagonal(delta, axis1=1, axis2=2)  # [c, n]
    mean_delta = blocked_sum(diag) / diag.shape[-1]
    kappa = k + mean_delta  # [c]
    q = (beta[:, :, None] + beta[:, None, :] + (delta - mean_delta[:, None, None])) / kappa[
        :, None, None]
    eps = (2.0 * beta + (diag - mean_delta[:, None])) / kappa[:, None]  # [c, n] = diag of q
    t = jnp.sqrt((1.0 + eps[:, :, None]) * (1.0 + eps[:, None, :]))
    cross = eps[:, :, None] + eps[:, None, :] + eps[:, :, None] * eps[:, None, :]
    zm1 = (q - cross / (1.0 + t)) / t
    ok = live[:, :, None] & live[:, None, :]
    return jnp.where(ok, zm1, jnp.nan)


@functools.partial(jax.jit, static_argnames=("chunk",))
def ablation_changes(x: jax.Array, *, chunk: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Unablated correlations and the changes of every ablation, in the dtype of ``x``.

    Args:
      x: ``[n, M]`` embeddings (the pooled maps).
      chunk: maps per step (bounds the ``[chunk, n, n]`` temporaries).

    Returns:
      (full ``[n, n]``, global_delta ``[M, n, n]``, per_image_delta ``[n, M, n]``), as
      `ais_jax.engine.ablation.AblationSimilarities` holds them.
    """
    n, m = x.shape
    full = corr_matrix(x)
    steps = -(-m // chunk)
    pad = steps * chunk - m
    # Padded maps: u = a = g = 0, s = 1 (a no-op removal); dropped below.
    terms = [jnp.pad(t, ((0, 0), (0, pad)), constant_values=v)
             for t, v in zip(row_terms(x), (0.0, 0.0, 0.0, 1.0), strict=True)]
    chunks = tuple(jnp.moveaxis(t.reshape(n, steps, chunk), 1, 0) for t in terms)  # [s, n, c]
    glob, per = jax.lax.map(lambda t: (global_delta(t, full, m), per_image_delta(t, full)),
                            chunks)
    glob = glob.reshape(steps * chunk, n, n)[:m]  # [M, n, n]
    per = jnp.moveaxis(per, 0, 1).reshape(n, steps * chunk, n)[:, :m]  # [n, M, n]
    return full, glob, per


def _split_scores(sim, human_train, human_test, train, test, score):
    """Alignment of ``sim`` ``[..., n, n]`` on the train and test images."""
    s_train = alignment(sim[..., train[:, None], train[None, :]], human_train, score)
    s_test = alignment(sim[..., test[:, None], test[None, :]], human_test, score)
    return s_train, s_test


@functools.partial(jax.jit, static_argnames=("chunk", "score"))
def prefix_scores(x, order, train, test, human_train, human_test, *, chunk, score):
    """Train and test scores of every prefix of ``order``, in the dtype of ``x``.

    Args:
      x: ``[n, M]`` embeddings (the pooled maps).
      order: ``[M]`` map ranking, best first.
      train, test: image indices.
      human_train, human_test: the human matrices on them.
      chunk: prefixes per step (the prefix sums within a step add at most this many terms).
      score: 'rho' or 'r2'.

    Returns:
      (train scores, test scores), each ``[steps * chunk]`` (prefix sizes 1, 2, ...; the ones
      beyond M are padding). A prefix in which an image has no non-zero kept map gives NaN
      where that image is included (its prefix embedding is constant).
    """
    n, m = x.shape
    steps = -(-m // chunk)
    ref = blocked_sum(x, axis=0) / n  # [M] the mean row: the images deviate little from it
    dev = x - ref[None]
    # Ranked and zero padded to whole chunks (padded maps add nothing to any sum).
    r = sharding.pad_axis(ref[order], steps * chunk).reshape(steps, chunk)
    d = sharding.pad_axis(dev[:, order].T, steps * chunk).reshape(steps, chunk, n)
    nz = sharding.pad_axis((x[:, order] != 0).T.astype(jnp.int32), steps * chunk)
    nz = nz.reshape(steps, chunk, n)

    def zeros(*shape):
        return jnp.zeros(shape, x.dtype), jnp.zeros(shape, x.dtype)

    def step(carry, xs):
        sums_carry, live_carry = carry
        rc, dc, nzc = xs  # [c], [c, n], [c, n]
        terms = (rc, rc * rc, dc, rc[:, None] * dc, dc[:, :, None] * dc[:, None, :])
        sums_carry, sums = prefix_sums(sums_carry, terms)
        live = live_carry[None] + jnp.cumsum(nzc, axis=0)  # [c, n] kept non-zero maps
        zm1 = prefix_corr_minus_one(sums, m, live > 0)  # [c, n, n]
        return (sums_carry, live[-1]), _split_scores(zm1, human_train, human_test, train,
                                                     test, score)

    carry0 = ((zeros(), zeros(), zeros(n), zeros(n), zeros(n, n)), jnp.zeros(n, jnp.int32))
    _, (s_train, s_test) = jax.lax.scan(step, carry0, (r, d, nz))
    return s_train.reshape(-1), s_test.reshape(-1)
