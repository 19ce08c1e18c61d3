"""Float64 NumPy loop implementations of SPEC §2-§5, the oracle for the JAX kernels.

Written as plainly as possible: zero a channel of the activations, run the head, corrcoef.
"""

from __future__ import annotations

import numpy as np

from ais_jax.models.vgg16 import adaptive_pool_matrix


def head_params64(head_params: dict) -> dict:
    return {k: {p: np.asarray(v, np.float64) for p, v in layer.items()}
            for k, layer in head_params.items()}


def pool_blocks(acts: np.ndarray) -> np.ndarray:
    """pool5 (2x2/2 max, floor) + adaptive 7x7 average; acts [n, h, w, C] -> [n, C, 49]."""
    n, h, w, c = acts.shape
    h2, w2 = h // 2, w // 2
    x = acts[:, : 2 * h2, : 2 * w2].reshape(n, h2, 2, w2, 2, c).max(axis=(2, 4))
    ph = adaptive_pool_matrix(h2).astype(np.float64)
    pw = adaptive_pool_matrix(w2).astype(np.float64)
    pooled = np.einsum("nhwc,ih,jw->ncij", x, ph, pw)
    return pooled.reshape(n, c, -1)


def head(hp: dict, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain head forward from activations: (emb [n, D], logits [n, C])."""
    x = pool_blocks(acts).reshape(acts.shape[0], -1)
    h6 = np.maximum(x @ hp["fc6"]["kernel"] + hp["fc6"]["bias"], 0)
    emb = np.maximum(h6 @ hp["fc7"]["kernel"] + hp["fc7"]["bias"], 0)
    return emb, emb @ hp["fc8"]["kernel"] + hp["fc8"]["bias"]


def ablate(acts: np.ndarray, keep: np.ndarray, images=None) -> np.ndarray:
    """acts with the channels where keep is False zeroed (in ``images`` only, default all)."""
    out = acts.copy()
    rows = slice(None) if images is None else images
    out[rows, ..., ~keep] = 0
    return out


def rho(model_sim: np.ndarray, human: np.ndarray) -> float:
    iu = np.triu_indices(len(human), k=1)
    return np.corrcoef(model_sim[iu], human[iu])[0, 1]


def score(model_sim, human, kind):
    r = rho(model_sim, human)
    return r if kind == "rho" else r**2


def global_ais(hp, acts, human, images=None, kind="rho") -> np.ndarray:
    """SPEC §4: AIS_k = score(Z) - score(Z^{not k}), every image ablated; on an image subset."""
    images = np.arange(len(acts)) if images is None else np.asarray(images)
    sub = acts[images]
    h = human[np.ix_(images, images)]
    base = score(np.corrcoef(head(hp, sub)[0]), h, kind)
    m = acts.shape[-1]
    out = np.zeros(m)
    for k in range(m):
        keep = np.ones(m, bool)
        keep[k] = False
        out[k] = base - score(np.corrcoef(head(hp, ablate(sub, keep))[0]), h, kind)
    return out


def per_image_ais(hp, acts, human) -> np.ndarray:
    """SPEC §5: AIS_ik = rho_i - rho_i^{not k}, map k ablated in image i only."""
    n, m = len(acts), acts.shape[-1]
    emb = head(hp, acts)[0]
    z = np.corrcoef(emb)
    out = np.zeros((n, m))
    for i in range(n):
        others = np.arange(n) != i
        base = np.corrcoef(z[i, others], human[i, others])[0, 1]
        for k in range(m):
            keep = np.ones(m, bool)
            keep[k] = False
            e_ik = head(hp, ablate(acts[i : i + 1], keep))[0][0]
            zi = np.array([np.corrcoef(e_ik, emb[j])[0, 1] for j in np.flatnonzero(others)])
            out[i, k] = base - np.corrcoef(zi, human[i, others])[0, 1]
    return out


def greedy_curve(hp, acts, order, human, images, kind="r2") -> np.ndarray:
    """SPEC §4: score of the embeddings with only the top-m ranked maps kept, m = 1..M."""
    sub = acts[images]
    h = human[np.ix_(images, images)]
    m = acts.shape[-1]
    curve = np.zeros(m)
    for size in range(1, m + 1):
        keep = np.zeros(m, bool)
        keep[np.asarray(order)[:size]] = True
        emb = head(hp, ablate(sub, keep))[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            curve[size - 1] = score(np.corrcoef(emb), h, kind)
    return curve


def synthetic_problem(seed: int, n: int = 18, hw: tuple[int, int] = (14, 18), maps: int = 12,
                      classes: int = 5, embed: int = 64, bias: float = 0.1):
    """A tiny head and clustered activations with planted zero maps, plus a human matrix.

    Images come from 3 prototypes (so model similarities spread like real ones), map 0 is zero
    in every image, map 1 is zero in images 0 and 2 only.

    Returns:
      (head_params, acts float32 [n, h, w, maps], human float64 [n, n] symmetric).
    """
    import jax
    import jax.numpy as jnp

    from ais_jax.models.vgg16 import VGG16Head

    rng = np.random.default_rng(seed)
    group = np.arange(n) % 3
    protos = rng.normal(size=(3, *hw, maps))
    # Sparse (~17% non-zero) like conv5_3, so that embeddings are not all alike.
    acts = np.maximum(2 * protos[group] + 0.5 * rng.normal(size=(n, *hw, maps)) - 2, 0)
    acts[..., 0] = 0
    acts[[0, 2], ..., 1] = 0
    acts = acts.astype(np.float32)
    model = VGG16Head(num_classes=classes, embed_dim=embed)
    params = model.init(jax.random.key(seed), jnp.asarray(acts))["params"]
    # Positive biases, as in trained VGG-16 heads, keep ReLU units alive when few maps are kept.
    params = {
        name: {"kernel": layer["kernel"], "bias": jnp.asarray(
            rng.uniform(0.0, bias, layer["bias"].shape), jnp.float32)}
        for name, layer in params.items()
    }
    noise = rng.normal(size=(n, n))
    human = (group[:, None] == group[None, :]) + 0.5 * (noise + noise.T)
    return params, acts, human
