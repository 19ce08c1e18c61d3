"""Flatten-linear heads of other sizes (#19): an AlexNet-shaped head (256 maps x 36 -> 4096 ->
4096) through the engine's fast paths, against the plain zero-and-forward path in float64.

Nothing in the engine knows AlexNet: M, B and the widths are read from the arrays. The float64
side zeroes block k (in every image, or in one) and runs the whole head with NumPy.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from ais_jax.engine import ablation, ais, heads, selection

N, MAPS, BLOCK, WIDTH = 16, 256, 36, 4096
TRAIN, TEST = np.arange(0, 10), np.arange(10, N)  # 45 and 15 pairs
SAMPLED = np.array([0, 1, 2, 17, 100, 128, 200, 255])  # maps checked against the float64 loop
ATOL = 1e-6


def _he(rng, n_in, n_out):
    return {"kernel": (rng.standard_normal((n_in, n_out), np.float32)
                       * np.float32(np.sqrt(2.0 / n_in))),
            "bias": rng.uniform(0, 0.01, n_out).astype(np.float32)}


def _forward64(hp, blocks):
    x = blocks.reshape(blocks.shape[0], -1)
    h6 = np.maximum(x @ hp["fc6"]["kernel"] + hp["fc6"]["bias"], 0)
    return np.maximum(h6 @ hp["fc7"]["kernel"] + hp["fc7"]["bias"], 0)


def _rho(x, y):
    return float(np.corrcoef(x, y)[0, 1])


@pytest.fixture(scope="module")
def alexnet():
    rng = np.random.default_rng(7)
    head = {"fc6": _he(rng, MAPS * BLOCK, WIDTH), "fc7": _he(rng, WIDTH, WIDTH),
            "fc8": _he(rng, WIDTH, 11)}
    level = rng.gamma(0.8, 1.0, MAPS)[None, :, None]
    group = np.arange(N) % 3
    protos = rng.normal(size=(3, MAPS, BLOCK))
    blocks = np.maximum(level * (protos[group] + 0.7 * rng.normal(size=(N, MAPS, BLOCK))) - 0.4,
                        0).astype(np.float32)  # pooled post-ReLU conv5: sparse, >= 0
    blocks[:, 0] = 0
    blocks[[0, 2], 1] = 0
    hp = {k: {p: np.asarray(v, np.float64) for p, v in layer.items()} for k, layer in head.items()}
    b64 = blocks.astype(np.float64)
    emb = _forward64(hp, b64)
    z = np.corrcoef(emb)
    iu = np.triu_indices(N, k=1)
    noise = rng.normal(size=(N, N))
    human = (z - z[iu].mean()) / z[iu].std() + 1.2 * (noise + noise.T) / np.sqrt(2)
    np.fill_diagonal(human, 0.0)
    head = {k: {p: jnp.asarray(v) for p, v in layer.items()} for k, layer in head.items()}
    return head, hp, blocks, b64, emb, z, human


def test_family_and_sizes_are_read_from_the_params(alexnet):
    head, _, blocks, *_ = alexnet
    assert heads.head_family(head) == "flatten_linear"
    assert ablation.head_dims(head, jnp.asarray(blocks)) == ablation.HeadDims(
        N, MAPS, BLOCK, WIDTH, WIDTH, 11)


@pytest.mark.parametrize("fc7_path", ["plain", "active"])
def test_ablations_and_ais_equal_float64_zero_and_forward(alexnet, fc7_path):
    head, hp, blocks, b64, emb, z, human = alexnet
    sims = ablation.ablation_similarities(head, jnp.asarray(blocks), fc7_path=fc7_path)
    gais = np.asarray(ais.global_ais(sims, human, score="rho"), np.float64)
    pais = np.asarray(ais.per_image_ais(sims, human), np.float64)
    iu = np.triu_indices(N, k=1)
    rho = _rho(z[iu], human[iu])
    np.testing.assert_allclose(sims.full, z, rtol=0, atol=ATOL)
    for k in SAMPLED:
        masked = b64.copy()
        masked[:, k] = 0
        e_k = _forward64(hp, masked)  # row i: image i with map k zeroed
        np.testing.assert_allclose(sims.global_[k], np.corrcoef(e_k), rtol=0, atol=ATOL)
        cross = np.corrcoef(e_k, emb)[:N, N:]  # corr(E[i, k], e_j)
        np.testing.assert_allclose(sims.per_image[:, k], cross, rtol=0, atol=ATOL)
        assert abs(gais[k] - (rho - _rho(np.corrcoef(e_k)[iu], human[iu]))) <= ATOL
        for i in range(N):
            o = np.arange(N) != i
            want = _rho(z[i, o], human[i, o]) - _rho(cross[i, o], human[i, o])
            assert abs(pais[i, k] - want) <= ATOL, (i, k)
    assert gais[0] == 0 and np.all(pais[:, 0] == 0) and pais[0, 1] == 0 == pais[2, 1]


def test_greedy_curve_equals_float64_zero_and_forward(alexnet):
    head, hp, blocks, b64, *_, human = alexnet
    sims = ablation.ablation_similarities(head, jnp.asarray(blocks))
    order = selection.rank_maps(np.asarray(ais.global_ais(sims, human, images=TRAIN)))
    res = selection.greedy_curves(head, jnp.asarray(blocks), order, human, train=TRAIN,
                                  test=TEST, score="r2")
    for size in (2, 5, 17, 64, 129, 200, MAPS):
        masked = np.zeros_like(b64)
        masked[:, order[:size]] = b64[:, order[:size]]
        emb = _forward64(hp, masked)
        for images, curve in ((TRAIN, res.train_curve), (TEST, res.test_curve)):
            zz = np.corrcoef(emb[images])
            h = human[np.ix_(images, images)]
            iu = np.triu_indices(len(images), k=1)
            assert abs(curve[size - 1] - _rho(zz[iu], h[iu]) ** 2) <= ATOL, (size, images)
