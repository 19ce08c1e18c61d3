"""Ranking, S* and the greedy prefix curve vs a float64 NumPy loop of SPEC §4."""

import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

from ais_jax.engine import ablation, ais, selection
from ais_jax.engine.similarity import alignment
from ais_jax.models.vgg16 import pool_blocks

N = 24
TEST = np.array([2, 5, 7, 10, 13, 14, 19, 22])
TRAIN = np.setdiff1d(np.arange(N), TEST)


@pytest.fixture(scope="module", params=[(14, 18), (9, 9)], ids=["14x18", "9x9"])
def problem(request):
    params, acts, human = ref.synthetic_problem(1, n=N, hw=request.param, maps=32)
    blocks = pool_blocks(jnp.asarray(acts))
    sims = ablation.ablation_similarities(params, blocks)
    order = selection.rank_maps(np.asarray(ais.global_ais(sims, human, images=TRAIN, score="r2")))
    return params, acts, human, blocks, order


@pytest.mark.parametrize("method", ["incremental", "naive"])
def test_greedy_curves_equal_float64_loop(problem, method):
    params, acts, human, blocks, order = problem
    hp64, a64 = ref.head_params64(params), acts.astype(np.float64)
    res = selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST,
                                  method=method, chunk_maps=5)
    want_train = ref.greedy_curve(hp64, a64, order, human, TRAIN)
    want_test = ref.greedy_curve(hp64, a64, order, human, TEST)
    np.testing.assert_allclose(res.train_curve, want_train, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.test_curve, want_test, rtol=0, atol=1e-6)
    assert res.best_size == int(np.nanargmax(want_train)) + 1
    assert res.n_nan_train == 0 and res.n_nan_test == 0


def test_last_point_is_the_full_score(problem):
    params, _, human, blocks, order = problem
    res = selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST)
    full = ablation.ablation_similarities(params, blocks).full
    for images, curve in ((TRAIN, res.train_curve), (TEST, res.test_curve)):
        sub = np.ix_(images, images)
        want = float(alignment(full[sub], jnp.asarray(human[sub], jnp.float32), "r2"))
        assert abs(curve[-1] - want) < 1e-6


def test_chunking_does_not_change_the_curve(problem):
    params, _, human, blocks, order = problem
    a = selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST, chunk_maps=1)
    b = selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST, chunk_maps=32)
    np.testing.assert_allclose(a.train_curve, b.train_curve, rtol=0, atol=1e-6)


def test_constant_prefix_is_nan_and_never_wins(problem):
    params, _, human, blocks, _ = problem
    # Map 0 is zero in every image: the 1-map prefix gives identical embeddings (NaN score).
    order = np.arange(32)
    res = selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST, score="rho")
    assert np.isnan(res.train_curve[0]) and np.isnan(res.test_curve[0])
    assert res.n_nan_train == 1 and res.n_nan_test == 1
    assert res.best_size == int(np.nanargmax(res.train_curve)) + 1 > 1


def test_rank_maps_is_a_stable_descending_sort():
    ais_values = np.array([0.1, 0.0, 0.3, 0.0, np.nan, 0.3, -0.2])
    np.testing.assert_array_equal(selection.rank_maps(ais_values), [2, 5, 0, 1, 3, 6, 4])
    with pytest.raises(ValueError, match=r"1-D"):
        selection.rank_maps(np.zeros((2, 3)))


def test_best_prefix():
    assert selection.best_prefix(np.array([0.1, 0.5, 0.2, 0.5])) == 2  # first maximum
    assert selection.best_prefix(np.array([np.nan, 0.1, np.nan, 0.05])) == 2  # NaN never wins
    with pytest.raises(ValueError, match="every score .* NaN"):
        selection.best_prefix(np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="non-empty"):
        selection.best_prefix(np.array([]))


def test_greedy_input_errors(problem):
    params, _, human, blocks, order = problem
    with pytest.raises(ValueError, match="permutation of the 32 maps"):
        selection.greedy_curves(params, blocks, order[:-1], human, train=TRAIN, test=TEST)
    with pytest.raises(ValueError, match=r"test indices must lie in \[0, 24\)"):
        selection.greedy_curves(params, blocks, order, human, train=TRAIN,
                                test=np.array([1, 2, 30]))
    with pytest.raises(ValueError, match=r"human matrix must be \[24, 24\]"):
        selection.greedy_curves(params, blocks, order, human[:3], train=TRAIN, test=TEST)
    with pytest.raises(ValueError, match="method"):
        selection.greedy_curves(params, blocks, order, human, train=TRAIN, test=TEST, method="x")
