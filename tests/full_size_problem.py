"""A full-size random VGG-16 problem and its float64 oracle, for the numerics tests (#8).

Real use is 4096-wide embeddings whose pairwise correlations are high (a trained VGG-16 on
the Peterson images: mean ~0.6-0.7, SD ~0.03). Long float32 sums are only stressed at that size
and conditioning, so the kernels are checked on exactly that: a He-scaled VGG-16 (trunk and a
25088 -> 4096 -> 4096 head), conv5_3 activations of generated 224 x 224 images, and a human
matrix made of the model's own similarities plus noise (so AIS values have a realistic size).
The embeddings' mean pairwise correlation is 0.87 (SD 0.03): harder than a real model.

The float64 side is computed once per session (``functools.cache``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from make_images import real_looking

from ais_jax.models.vgg16 import TRUNK_LAYOUT, VGG16Trunk, pool_blocks

N_IMAGES = 24


def he_vgg16(seed: int, classes: int = 10) -> dict:
    """He-normal VGG-16 parameters (zero biases), so activations survive 13 ReLU layers."""
    rng = np.random.default_rng(seed)
    trunk, c_in = {}, 3
    for layer in TRUNK_LAYOUT:
        if layer == "M":
            continue
        name, c_out = layer
        std = np.sqrt(2.0 / (9 * c_in))
        trunk[name] = {"kernel": rng.standard_normal((3, 3, c_in, c_out), np.float32) * std,
                       "bias": np.zeros(c_out, np.float32)}
        c_in = c_out

    def dense(n_in, n_out):
        return {"kernel": rng.standard_normal((n_in, n_out), np.float32) * np.sqrt(2.0 / n_in),
                "bias": np.zeros(n_out, np.float32)}

    head = {"fc6": dense(512 * 49, 4096), "fc7": dense(4096, 4096), "fc8": dense(4096, classes)}
    return jax.tree.map(jnp.asarray, {"trunk": trunk, "head": head})


def head64(head_params: dict) -> dict:
    return {k: {p: np.asarray(v, np.float64) for p, v in layer.items()}
            for k, layer in head_params.items()}


def unit64(x: np.ndarray) -> np.ndarray:
    c = x - x.mean(axis=-1, keepdims=True)
    return c / np.linalg.norm(c, axis=-1, keepdims=True)


def pearson64(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


@functools.cache
def problem(n: int = N_IMAGES, seed: int = 0):
    """(head params, acts float32 [n, 14, 14, 512], blocks float32 [n, 512, 49], human [n, n])."""
    params = he_vgg16(seed)
    rng = np.random.default_rng(seed + 1)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    images = np.stack([real_looking(rng, 224, 224) for _ in range(n)]).astype(np.float32)
    images = (images / 255.0 - mean) / std  # [n, 224, 224, 3]
    trunk = jax.jit(lambda p, x: VGG16Trunk().apply({"params": p}, x))
    acts = np.concatenate([np.asarray(trunk(params["trunk"], jnp.asarray(images[i:i + 8])))
                           for i in range(0, n, 8)])
    blocks = np.asarray(pool_blocks(jnp.asarray(acts)))
    # Human similarity: the model's own (float64) similarities, standardised, plus symmetric
    # noise, so that 2OI rho ~0.6 as for real models and AIS values have realistic sizes.
    z = np.corrcoef(oracle_embeddings(params["head"], blocks)[0])
    iu = np.triu_indices(n, k=1)
    noise = rng.normal(size=(n, n))
    human = (z - z[iu].mean()) / z[iu].std() + 1.2 * (noise + noise.T) / np.sqrt(2)
    np.fill_diagonal(human, 0.0)
    return params["head"], acts, blocks, human


def oracle_embeddings(head_params: dict, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (emb [n, D], E [n, M, D]) with E[i, k] = head(blocks_i with map k zeroed).

    Uses the fc6 identity of SPEC §2 (exact in real arithmetic; `tests/test_precision_full_size`
    checks it against the plain float64 head on sampled maps).
    """
    hp = head64(head_params)
    b64 = np.asarray(blocks, np.float64)
    n, m, b = b64.shape
    w6 = hp["fc6"]["kernel"].reshape(m, b, -1)
    fc6 = b64.reshape(n, -1) @ hp["fc6"]["kernel"] + hp["fc6"]["bias"]
    emb = np.maximum(np.maximum(fc6, 0) @ hp["fc7"]["kernel"] + hp["fc7"]["bias"], 0)
    out = np.empty((n, m, emb.shape[1]))
    for i in range(n):
        pre = fc6[i][None] - np.einsum("kb,kbo->ko", b64[i], w6)
        out[i] = np.maximum(np.maximum(pre, 0) @ hp["fc7"]["kernel"] + hp["fc7"]["bias"], 0)
    return emb, out


@functools.cache
def oracle(n: int = N_IMAGES, seed: int = 0) -> dict:
    """float64 SPEC §3-§5 quantities of `problem`: Z, global AIS (rho), per-image AIS."""
    head_params, _, blocks, human = problem(n, seed)
    emb, e_abl = oracle_embeddings(head_params, blocks)
    z = np.corrcoef(emb)
    iu = np.triu_indices(n, k=1)
    rho = pearson64(z[iu], human[iu])
    rho_abl = np.array([pearson64(np.corrcoef(e_abl[:, k])[iu], human[iu])
                        for k in range(e_abl.shape[1])])
    u, u_abl = unit64(emb), unit64(e_abl)  # [n, D], [n, M, D]
    per_image = np.empty((n, e_abl.shape[1]))
    for i in range(n):
        others = np.arange(n) != i
        z_abl = u_abl[i] @ u[others].T  # [M, n - 1]
        base = pearson64(z[i, others], human[i, others])
        per_image[i] = [base - pearson64(row, human[i, others]) for row in z_abl]
    return {"emb": emb, "z": z, "rho": rho, "global_rho": rho - rho_abl,
            "global_r2": rho**2 - rho_abl**2, "per_image": per_image}


def oracle_greedy(head_params, blocks, order, human, images, sizes) -> np.ndarray:
    """float64 R^2 on ``images`` of the embeddings with only the top-``s`` maps kept."""
    hp = head64(head_params)
    b64 = np.asarray(blocks, np.float64)[images]
    n, m, b = b64.shape
    w6 = hp["fc6"]["kernel"].reshape(m, b, -1)
    h = human[np.ix_(images, images)]
    iu = np.triu_indices(n, k=1)
    out = []
    for s in sizes:
        keep = np.asarray(order)[:s]
        pre = hp["fc6"]["bias"] + np.einsum("nkb,kbo->no", b64[:, keep], w6[keep])
        emb = np.maximum(np.maximum(pre, 0) @ hp["fc7"]["kernel"] + hp["fc7"]["bias"], 0)
        out.append(pearson64(np.corrcoef(emb)[iu], h[iu]) ** 2)
    return np.array(out)
