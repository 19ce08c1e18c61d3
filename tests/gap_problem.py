"""Gap-head (ResNet-style) problems and their float64 plain zero-and-forward oracle (#19).

The activations mimic ResNet-50's post-ReLU ``layer4`` maps: non-negative, sparse, a per-map
level shared by all images (so pooled embeddings correlate highly across images) modulated
per image group, averaged over a 7 x 7 grid. The oracle is independent of the engine's closed
forms: it zeroes channel k of the activations, global-average-pools them again in float64
(the head of a gap network) and correlates with `np.corrcoef`.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np


@functools.cache
def problem(n: int, maps: int, seed: int = 0, classes: int = 7, grid: int = 7,
            shape: float = 0.7):
    """(head params, acts float32 [n, grid, grid, M], blocks float32 [n, M, 1], human [n, n]).

    Map 0 is zero in every image, map 1 in images 0 and 2. ``shape``: of the Gamma law of the
    per-map levels (smaller: heavier tail). With few maps and a heavy tail one map can carry
    almost all of an image's variance, which no float32 path computes its removal well from.
    """
    rng = np.random.default_rng(seed)
    level = rng.gamma(shape, 1.0, maps)  # per-map level: many small, a few large
    group = np.arange(n) % 4
    protos = rng.normal(size=(4, maps))
    mod = 1.0 + 0.35 * protos[group] + 0.25 * rng.normal(size=(n, maps))  # [n, M]
    spatial = rng.normal(size=(n, grid, grid, maps))
    acts = np.maximum(level * (mod[:, None, None, :] + 0.8 * spatial) - 0.3, 0.0)
    acts[..., 0] = 0
    acts[[0, 2], ..., 1] = 0
    acts = acts.astype(np.float32)
    blocks = acts.astype(np.float64).mean(axis=(1, 2))[:, :, None].astype(np.float32)
    head = {"fc": {"kernel": jnp.asarray(rng.normal(size=(maps, classes)) / np.sqrt(maps),
                                         jnp.float32),
                   "bias": jnp.asarray(rng.uniform(0, 0.1, classes), jnp.float32)}}
    z = np.corrcoef(forward64(head, pool64(acts))[0])
    iu = np.triu_indices(n, k=1)
    noise = rng.normal(size=(n, n))
    human = (z - z[iu].mean()) / z[iu].std() + 1.2 * (noise + noise.T) / np.sqrt(2)
    np.fill_diagonal(human, 0.0)
    return head, acts, blocks, human


def forward64(head: dict, pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plain gap head in float64 on (masked) pooled maps ``[..., M]``: emb, then fc."""
    emb = np.asarray(pooled, np.float64)
    w = np.asarray(head["fc"]["kernel"], np.float64)
    return emb, emb @ w + np.asarray(head["fc"]["bias"], np.float64)


def pool64(acts: np.ndarray) -> np.ndarray:
    """Global average pool in float64: ``[n, h, w, M] -> [n, M]``."""
    return np.asarray(acts, np.float64).mean(axis=(-3, -2))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


@functools.cache
def oracle(n: int, maps: int, seed: int = 0, shape: float = 0.7) -> dict:
    """float64 ablated correlations and AIS of `problem` by zero-and-forward."""
    head, acts, _, human = problem(n, maps, seed, shape=shape)
    return oracle_for(head, pool64(acts), human)


def oracle_for(head: dict, pooled: np.ndarray, human: np.ndarray) -> dict:
    """Zero map k (in all images, or in image i only), run the head, correlate: float64 loops.

    Args:
      head: gap head params.
      pooled: ``[n, M]`` float64 pooled maps (zeroing map k of the activations zeroes
        ``pooled[:, k]``: the pool acts channel by channel).
      human: ``[n, n]`` human similarity.
    """
    n, m = pooled.shape
    emb = forward64(head, pooled)[0]
    z = np.corrcoef(emb)
    iu = np.triu_indices(n, k=1)
    rho = pearson(z[iu], human[iu])
    glob = np.empty((m, n, n))
    for k in range(m):
        masked = pooled.copy()
        masked[:, k] = 0
        glob[k] = np.corrcoef(forward64(head, masked)[0])
    rho_abl = np.array([pearson(g[iu], human[iu]) for g in glob])
    per = np.empty((n, m, n))
    per_ais = np.empty((n, m))
    d = emb - emb.mean(axis=1, keepdims=True)
    for i in range(n):
        others = np.arange(n) != i
        e_i = forward64(head, pooled[i][None] * (1.0 - np.eye(m)))[0]  # [M, M]: k zeroed
        c = e_i - e_i.mean(axis=1, keepdims=True)
        per[i] = (c @ d.T) / np.outer(np.linalg.norm(c, axis=1), np.linalg.norm(d, axis=1))
        base = pearson(z[i, others], human[i, others])
        per_ais[i] = [base - pearson(row[others], human[i, others]) for row in per[i]]
    return {"emb": emb, "z": z, "rho": rho, "global_": glob, "per_image": per,
            "global_rho": rho - rho_abl, "global_r2": rho**2 - rho_abl**2, "per_ais": per_ais}


def greedy64(head: dict, pooled: np.ndarray, order, human: np.ndarray, images, sizes,
             kind: str = "r2") -> np.ndarray:
    """float64 score on ``images`` with only the top-``s`` maps kept (zero and forward)."""
    order = np.asarray(order)
    h = human[np.ix_(images, images)]
    iu = np.triu_indices(len(images), k=1)
    out = []
    for s in sizes:
        masked = np.zeros_like(pooled[images])
        masked[:, order[:s]] = pooled[np.ix_(images, order[:s])]
        emb = forward64(head, masked)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = pearson(np.corrcoef(emb)[iu], h[iu])
        out.append(r if kind == "rho" else r**2)
    return np.array(out)
