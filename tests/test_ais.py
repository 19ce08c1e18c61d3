"""Global and per-image AIS vs a float64 NumPy loop of SPEC §4-§5; similarity helpers."""

import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
import scipy.stats

from ais_jax.engine import ablation, ais, similarity
from ais_jax.models.vgg16 import pool_blocks


@pytest.fixture(scope="module", params=[(14, 18), (9, 9)], ids=["14x18", "9x9"])
def problem(request):
    params, acts, human = ref.synthetic_problem(1, n=18, hw=request.param)
    sims = ablation.ablation_similarities(params, pool_blocks(jnp.asarray(acts)), chunk_maps=7)
    return params, acts, human, sims


@pytest.mark.parametrize("score", ["rho", "r2"])
def test_global_ais_equals_float64_loop(problem, score):
    params, acts, human, sims = problem
    want = ref.global_ais(ref.head_params64(params), acts.astype(np.float64), human, kind=score)
    got = ais.global_ais(sims, human, score=score)
    assert got.shape == (acts.shape[-1],)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.abs(want).max() > 1e-3  # the test is not vacuous


def test_global_ais_on_an_image_subset(problem):
    params, acts, human, sims = problem
    train = np.array([0, 1, 3, 4, 6, 8, 9, 11, 12, 15, 16, 17])
    want = ref.global_ais(ref.head_params64(params), acts.astype(np.float64), human, train, "r2")
    got = ais.global_ais(sims, human, images=train, score="r2")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_per_image_ais_equals_float64_loop(problem):
    params, acts, human, sims = problem
    want = ref.per_image_ais(ref.head_params64(params), acts.astype(np.float64), human)
    got = ais.per_image_ais(sims, human)
    assert got.shape == (acts.shape[0], acts.shape[-1])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.abs(want).max() > 1e-3


def test_zero_maps_have_ais_exactly_zero(problem):
    _, _, human, sims = problem
    g = np.asarray(ais.global_ais(sims, human))
    p = np.asarray(ais.per_image_ais(sims, human))
    assert g[0] == 0.0  # map 0 is zero in every image
    assert np.all(p[:, 0] == 0.0)
    assert p[0, 1] == 0.0 and p[2, 1] == 0.0  # map 1 is zero in images 0 and 2 only
    assert np.all(p[np.asarray(sims.zero_pairs)] == 0.0)
    assert np.count_nonzero(p) == p.size - np.asarray(sims.zero_pairs).sum()


def test_ais_input_errors(problem):
    _, _, human, sims = problem
    with pytest.raises(ValueError, match=r"human matrix must be \[18, 18\]"):
        ais.global_ais(sims, human[:5, :5])
    with pytest.raises(ValueError, match=r"human matrix must be \[18, 18\]"):
        ais.per_image_ais(sims, human[:, :4])
    with pytest.raises(ValueError, match="images"):
        ais.global_ais(sims, human, images=np.array([0, 40, 2]))
    with pytest.raises(ValueError, match="score"):
        ais.global_ais(sims, human, score="tau")


def test_similarity_helpers_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2, 7, 30))
    np.testing.assert_allclose(similarity.corr_matrix(jnp.asarray(emb, jnp.float32))[1],
                               np.corrcoef(emb[1]), atol=1e-6)
    m = rng.normal(size=(6, 6)).astype(np.float32)
    np.testing.assert_array_equal(similarity.upper_triangle(jnp.asarray(m)),
                                  m[np.triu_indices(6, 1)])
    x, y = rng.normal(size=(2, 40))
    ours = float(similarity.pearson(jnp.asarray(x), jnp.asarray(y)))
    assert abs(ours - scipy.stats.pearsonr(x, y)[0]) < 1e-6
    z, h = rng.normal(size=(2, 6, 6))
    rho = scipy.stats.pearsonr(z[np.triu_indices(6, 1)], h[np.triu_indices(6, 1)])[0]
    assert abs(float(similarity.alignment(jnp.asarray(z), jnp.asarray(h))) - rho) < 1e-6
    assert abs(float(similarity.alignment(jnp.asarray(z), jnp.asarray(h), "r2")) - rho**2) < 1e-6
    with pytest.raises(ValueError, match=r"square"):
        similarity.upper_triangle(jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(5, 5\) does not match"):
        similarity.alignment(jnp.zeros((6, 6)), jnp.zeros((5, 5)))
