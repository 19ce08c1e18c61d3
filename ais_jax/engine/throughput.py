"""How fast this device multiplies: the timer and the float32 matmul probe that the benchmark
and the full-scale rehearsal share (their FLOP bounds are stated against this rate)."""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp

from ais_jax.models.vgg16 import PRECISION


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call incl. compile, best of ``repeats`` later calls), in seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, min(times)


def matmul_rate(size: int, repeats: int = 5) -> float:
    """Measured float32 (HIGHEST) rate of a ``size x size`` matmul in FLOP/s, best of
    ``repeats``."""
    keys = jax.random.split(jax.random.key(1))
    a = jax.random.normal(keys[0], (size, size), jnp.float32)  # [size, size]
    b = jax.random.normal(keys[1], (size, size), jnp.float32)
    mm = jax.jit(lambda x, y: jnp.dot(x, y, precision=PRECISION))
    _, best = best_time(lambda: mm(a, b), repeats)
    return 2.0 * size**3 / best
