"""Gap-head (ResNet-50-sized) kernels against float64 zero-and-forward at full size (#19).

2048 pooled maps of 24 images, generated like ResNet-50's post-ReLU ``layer4`` (non-negative,
~23 % exactly zero, many small values, a heavy-tailed per-map level), whose embeddings
correlate at 0.85 on average (SD 0.045): long float32 sums are as stressed as in real use or
more. The float64 side zeroes the maps and runs the (pool -> identity) head with NumPy, never
the closed forms. Tolerance: 1e-6 absolute (SPEC §2); the measured errors are in the comments.
"""

import gap_problem as gp
import jax.numpy as jnp
import numpy as np
import pytest

from ais_jax.engine import ablation, ais, selection

N, M = 24, 2048
ATOL = 1e-6


@pytest.fixture(scope="module")
def full():
    head, acts, blocks, human = gp.problem(N, M)
    sims = ablation.ablation_similarities(head, jnp.asarray(blocks))
    return head, acts, blocks, human, sims, gp.oracle(N, M)


def test_the_problem_is_as_hard_as_real_use(full):
    *_, blocks, _, _, want = full
    z = want["z"]
    iu = np.triu_indices(N, k=1)
    assert z[iu].mean() > 0.8 and z[iu].std() < 0.05  # highly correlated, narrow spread
    assert 0.1 < np.mean(blocks == 0) < 0.4  # many exact zeros (and many small values)
    assert np.median(np.abs(want["per_ais"][want["per_ais"] != 0])) < 1e-3


def test_ablated_correlations(full):
    *_, sims, want = full
    off = ~np.eye(N, dtype=bool)
    err_full = np.abs(np.asarray(sims.full, np.float64) - want["z"])[off].max()
    # the changes carry the full matrix's rounding only through the sum
    err_glob = np.abs(np.asarray(sims.global_delta, np.float64)
                      - (want["global_"] - want["z"][None])).max()
    err_per = np.abs(np.asarray(sims.per_image_delta, np.float64)
                     - (want["per_image"] - want["z"][:, None])).max()
    assert err_full <= 2e-7, err_full  # measured 1.1e-7
    assert err_glob <= 5e-8 and err_per <= 5e-8, (err_glob, err_per)  # measured 1.7e-8


@pytest.mark.parametrize("score", ["rho", "r2"])
def test_global_ais(full, score):
    *_, human, sims, want = full
    got = np.asarray(ais.global_ais(sims, human, score=score), np.float64)
    # measured 6.5e-9 (rho) / 8.4e-9 (r2); median |AIS| 4e-6 / 5e-6
    np.testing.assert_allclose(got, want[f"global_{score}"], rtol=0, atol=ATOL)


def test_per_image_ais(full):
    *_, human, sims, want = full
    got = np.asarray(ais.per_image_ais(sims, human), np.float64)
    np.testing.assert_allclose(got, want["per_ais"], rtol=0, atol=ATOL)  # measured 5.2e-8


def test_greedy_curve(full):
    """One curve (train 16 / test 8 images) at every 8th prefix size."""
    head, acts, blocks, human, _, want = full
    train, test = np.flatnonzero(np.arange(N) % 3 != 0), np.arange(0, N, 3)
    order = selection.rank_maps(want["global_rho"])
    res = selection.greedy_curves(head, jnp.asarray(blocks), order, human, train=train,
                                  test=test, score="r2")
    sizes = np.arange(2, M + 1, 8)
    x64 = gp.pool64(acts)
    for images, curve in ((train, res.train_curve), (test, res.test_curve)):
        ref = gp.greedy64(head, x64, order, human, images, sizes)
        # measured 2.2e-7 / 2.4e-7 (train / test, every prefix from 2)
        np.testing.assert_allclose(curve[sizes - 1], ref, rtol=0, atol=ATOL)
