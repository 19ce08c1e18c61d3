"""Exact active-set products: skip the inputs that are zero in every row of a group.

fc7's input is ``relu(fc6_pre)`` (on the ablation path: the change of it). A unit that is 0 in
every row of a group -- one image's ablations, or one image's block of consecutive greedy
prefixes -- adds exactly nothing to that group's fc7 product. `grouped_product` gathers, per
group, only the inputs that are non-zero in some row and the matching rows of the kernel, and
multiplies those: the same sum without its zero terms, so the same product up to the order in
which the matmul adds its terms (round-off, not an approximation).

The number of active inputs varies from group to group while `jit` needs static shapes, so it
is rounded up to one of a few bucket sizes (`bucket_sizes`) and `lax.switch` runs the branch
of that size; groups with more active inputs than the largest bucket take the plain product.

Where it pays (measured on a 2-core AMD EPYC CPU, XLA float32 HIGHEST, one image's 128 rows
times a 4096 x 4096 kernel): gathering K = 1024 / 2048 / 2560 / 3072 of the 4096 inputs ran
2.7x / 1.3x / 1.1x / 0.9x as fast as the plain product, because the gather of K kernel rows
(K x 4096 floats) is memory-bound while the plain matmul runs at the FLOP rate. So the largest
bucket is 5/8 of the width, and groups must have many rows (>= 64) to pay for their gather.
Accelerators were not measured (no device was available); the callers use the plain product
there by default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ais_jax.models.vgg16 import PRECISION

# Bucket sizes as fractions of the input width, in 16ths (less padding than coarser steps);
# the largest is where the gather stops paying.
BUCKET_FRACTIONS = tuple(k / 16 for k in range(1, 11))
# Rows per group (image) for the gather to pay: measured on the greedy curve (n = 120, fc6
# 25 % active), blocks of 128 prefixes ran 9.1 s, of 64 9.7 s, against 13.0 s plain.
GROUP_ROWS = 128
# 'auto' takes the active-set path where at most these fractions of fc6 units are active in
# the unablated images, one threshold per kernel (their break-evens differ). Both measured by
# `experiments.bench` (n = 120, 2-core AMD EPYC CPU, float32 HIGHEST; the previous round's
# table in docs/performance.md):
# - greedy curve: 1.59x faster at 25 % active, 0.98x at 50 % (a random He-scaled head: the
#   union over a block of 128 prefixes is then ~75 %): break-even at or below 35 %.
AUTO_MAX_ACTIVE_GREEDY = 0.35
# - ablation similarities: 1.50x at 25 %, still 1.23x at 50 % (one image's 512 ablations
#   change few fc6 units each, so the union stays small): active up to 50 %, the highest
#   fraction measured (no measurement above it).
AUTO_MAX_ACTIVE_ABLATION = 0.5
AUTO_MAX_ACTIVE = {"greedy": AUTO_MAX_ACTIVE_GREEDY, "ablation": AUTO_MAX_ACTIVE_ABLATION}
PATHS = ("auto", "active", "plain")


def bucket_sizes(width: int) -> tuple[int, ...]:
    """Static active-input counts tried for inputs ``width`` wide, ascending, all < width."""
    sizes = sorted({max(1, round(f * width)) for f in BUCKET_FRACTIONS})
    return tuple(s for s in sizes if s < width)


def resolve_path(path: str, active_fraction: float, kernel: str = "greedy") -> bool:
    """True where the active-set product is used.

    Args:
      path: ``'active'``, ``'plain'``, or ``'auto'``: the active set on CPU where at most
        ``AUTO_MAX_ACTIVE[kernel]`` of the units are active (where it was measured to pay),
        plain elsewhere (accelerators were not measured).
      active_fraction: fraction of fc6 units active in the unablated images.
      kernel: ``'greedy'`` (the greedy curve) or ``'ablation'`` (the ablation similarities).
    """
    if path not in PATHS:
        raise ValueError(f"fc7 path must be one of {PATHS}, got {path!r}")
    if kernel not in AUTO_MAX_ACTIVE:
        raise ValueError(f"kernel must be one of {tuple(AUTO_MAX_ACTIVE)}, got {kernel!r}")
    if path == "auto":
        return jax.default_backend() == "cpu" and active_fraction <= AUTO_MAX_ACTIVE[kernel]
    return path == "active"


def _gathered(x: jax.Array, kernel: jax.Array, active: jax.Array, size: int) -> jax.Array:
    """``x @ kernel`` over the (at most ``size``) active inputs: ``[r, d] -> [r, out]``."""
    width = x.shape[-1]
    # Active indices in ascending order, padded with an out-of-range index whose gathered
    # input and kernel row are 0 (so padding adds exact zeros).
    idx = jnp.nonzero(active, size=size, fill_value=width)[0]  # [size]
    xg = jnp.take(x, idx, axis=1, mode="fill", fill_value=0)  # [r, size]
    wg = jnp.take(kernel, idx, axis=0, mode="fill", fill_value=0)  # [size, out]
    return jnp.dot(xg, wg, precision=PRECISION)


def _plain(x: jax.Array, kernel: jax.Array, active: jax.Array) -> jax.Array:
    del active
    return jnp.dot(x, kernel, precision=PRECISION)


def group_branch(active_count: jax.Array, sizes: tuple[int, ...]) -> jax.Array:
    """Index of the smallest bucket holding ``active_count`` inputs; ``len(sizes)`` = plain."""
    return jnp.searchsorted(jnp.asarray(sizes, active_count.dtype), active_count, side="left")


def group_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` for one group of rows, over only the inputs non-zero in some row.

    Args:
      x: ``[r, d]`` one group's rows (e.g. one image's c prefixes).
      kernel: ``[d, out]``.

    Returns:
      ``[r, out]``; equal to ``x @ kernel`` up to the order of its float32 sums.
    """
    sizes = bucket_sizes(x.shape[-1])
    branches = [lambda a, w, m, s=s: _gathered(a, w, m, s) for s in sizes] + [_plain]
    active = jnp.any(x != 0, axis=0)  # [d]
    branch = group_branch(jnp.sum(active, dtype=jnp.int32), sizes)
    return jax.lax.switch(branch, branches, x, kernel, active)


def grouped_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``einsum('grd,do->gro', x, kernel)``, skipping per group the inputs zero in all its rows.

    Args:
      x: ``[g, r, d]`` groups of rows.
      kernel: ``[d, out]``.

    Returns:
      ``[g, r, out]``; equal to the plain product up to the order of its float32 sums.
    """
    # Sequential over groups on purpose: `lax.map`'s batching would turn the switch into a
    # select that runs every branch.
    return jax.lax.map(lambda xi: group_product(xi, kernel), x)
