"""Bilinear resizing with OpenCV ``INTER_LINEAR`` semantics, in JAX.

Output pixel ``i`` samples the input at ``(i + 0.5) * in / out - 0.5`` (half-pixel centres),
mixes the two neighbouring pixels linearly, clamps at the edges, and never antialiases when
shrinking. The sample positions and weights are computed in float64 on the host and applied as
two float32 matrix products at full precision. ``jax.image.resize(method='linear',
antialias=False)`` has the same semantics but computes the positions in float32, which shifts
weights by up to ~1e-4 for inputs of ~800 pixels.

Two documented differences from ``cv2.resize`` itself (bounded in ``tests/test_saliency.py``):
OpenCV also rounds each sample position to float32 (the same ~1e-4 weight errors), and its
uint8 path uses 11-bit fixed-point weights, so an 8-bit result rounded from ours differs from
OpenCV's by one grey level in about one pixel in eight.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=64)
def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ``[n_out, n_in]`` float32 matrix of OpenCV's linear weights along one axis."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lo = np.floor(pos)
    frac = pos - lo
    lo = lo.astype(np.int64)
    rows = np.arange(n_out)
    weights = np.zeros((n_out, n_in), np.float64)
    # Clamping both taps into the image reproduces OpenCV's edge rule (all weight on the edge).
    np.add.at(weights, (rows, np.clip(lo, 0, n_in - 1)), 1.0 - frac)
    np.add.at(weights, (rows, np.clip(lo + 1, 0, n_in - 1)), frac)
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resizes the two leading (H, W) axes bilinearly, as OpenCV's ``INTER_LINEAR``.

    Args:
      x: ``[H, W]`` or ``[H, W, ...]`` array (any real dtype; computed in float32).
      size: ``(out_h, out_w)``, both positive.

    Returns:
      ``[out_h, out_w, ...]`` float32 array.

    Raises:
      ValueError: if ``x`` has fewer than two axes or an empty one, or a size is not positive.
    """
    out_h, out_w = (int(s) for s in size)
    if x.ndim < 2 or min(x.shape[:2]) < 1:
        raise ValueError(f"resize_bilinear: expected an [H, W, ...] array, got shape {x.shape}")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"resize_bilinear: output size must be positive, got {(out_h, out_w)}")
    x = jnp.asarray(x, jnp.float32)
    rows = jnp.asarray(interpolation_matrix(x.shape[0], out_h))  # [out_h, H]
    cols = jnp.asarray(interpolation_matrix(x.shape[1], out_w))  # [out_w, W]
    x = jnp.einsum("ih,hw...->iw...", rows, x, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("jw,iw...->ij...", cols, x, precision=jax.lax.Precision.HIGHEST)
