"""Soft masks (SPEC §10): fc6-identity forward, float64 gradient, and test images kept out."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

from ais_jax.fitting import inner, softmask
from ais_jax.models.vgg16 import VGG16Head, pool_blocks

N = 24
TEST = np.array([2, 5, 7, 10, 13, 14, 19, 22])
TRAIN = np.setdiff1d(np.arange(N), TEST)
# A short fit keeps the suite fast; the semantics do not depend on the step counts.
FAST = dict(lambdas=(0.0, 0.03, 0.3), path_steps=8, final_steps=8, patience=4)


@pytest.fixture(scope="module")
def problem():
    params, acts, human = ref.synthetic_problem(1, n=N, hw=(9, 9), maps=16)
    return params, acts, human, np.asarray(pool_blocks(jnp.asarray(acts)))


def test_fc6_identity_equals_plain_masked_head(problem):
    params, acts, _, blocks = problem
    mask = np.random.default_rng(0).uniform(0.05, 1.0, blocks.shape[1]).astype(np.float32)
    contrib = softmask.map_contributions(params, jnp.asarray(blocks))
    got = softmask.masked_embeddings(params, contrib, jnp.asarray(mask))
    model = VGG16Head(num_classes=params["fc8"]["bias"].shape[0],
                      embed_dim=params["fc7"]["bias"].shape[0])
    plain, _ = model.apply({"params": params}, jnp.asarray(blocks * mask[None, :, None]),
                           method=VGG16Head.from_blocks)
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)
    # float64 semantics: scaling channel k of the activations by m_k (pooling commutes with it)
    want, _ = ref.head(ref.head_params64(params), acts.astype(np.float64) * mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("score", ["rho", "r2"])
def test_objective_gradient_matches_finite_differences_float64(problem, score):
    params, acts, human, _ = problem
    with jax.enable_x64(True):
        hp = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
        blocks = jnp.asarray(ref.pool_blocks(acts.astype(np.float64)))
        contrib = softmask.map_contributions(hp, blocks[TRAIN])
        h = jnp.asarray(human[np.ix_(TRAIN, TRAIN)])
        theta = jnp.asarray(np.random.default_rng(1).normal(1.0, 1.0, blocks.shape[1]))
        lam = jnp.float64(0.07)

        @jax.jit
        def f(t):
            return softmask.softmask_objective(t, hp, contrib, h, lam, score)

        assert f(theta).dtype == jnp.float64
        grad = np.asarray(jax.grad(f)(theta))
        eps = 1e-5
        eye = np.eye(theta.size)
        fd = np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in eye])
        # value, in float64 NumPy: activations scaled channel by channel, corrcoef, Pearson
        m = 1 / (1 + np.exp(-np.asarray(theta)))
        emb, _ = ref.head(ref.head_params64(params), acts[TRAIN].astype(np.float64) * m)
        want = ref.score(np.corrcoef(emb), human[np.ix_(TRAIN, TRAIN)], score) - 0.07 * m.mean()
        value = float(f(theta))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    assert abs(value - want) < 1e-12
    assert np.abs(grad).max() > 1e-4  # a real gradient, not a vacuous comparison


def test_fit_path_raises_the_training_objective(problem):
    params, _, human, blocks = problem
    contrib = softmask.map_contributions(params, jnp.asarray(blocks[TRAIN]))
    h = jnp.asarray(human[np.ix_(TRAIN, TRAIN)], jnp.float32)
    theta0 = jnp.full(16, 3.0)
    start = float(softmask.mask_score(params, contrib, h, jax.nn.sigmoid(theta0), "r2"))
    thetas, steps, values = softmask.fit_path(
        theta0, params, contrib, h, jnp.zeros(1), score="r2", learning_rate=0.1,
        max_steps=FAST["final_steps"], patience=FAST["patience"], tol=1e-6)
    assert float(values[0]) > start + 1e-3 and 0 < int(steps[0]) <= FAST["final_steps"]
    # the returned logits are the best seen, and their objective is what is reported
    again = float(softmask.mask_score(params, contrib, h, jax.nn.sigmoid(thetas[0]), "r2"))
    assert again == pytest.approx(float(values[0]), abs=1e-6)


def _fitting_fields(out):
    return {k: v for k, v in out.items() if not k.startswith("test_")}


def test_test_images_never_enter_fitting_or_the_penalty_choice(problem):
    params, _, human, blocks = problem
    greedy = np.arange(5)
    out = softmask.fit_softmask(params, blocks, human, TRAIN, TEST, score="r2",
                                greedy_set=greedy, **FAST)
    fit, val = np.array(out["inner_fit"]), np.array(out["inner_val"])
    assert np.intersect1d(fit, val).size == 0
    np.testing.assert_array_equal(np.union1d(fit, val), TRAIN)
    assert np.intersect1d(np.union1d(fit, val), TEST).size == 0
    assert out["test"] == TEST.tolist() and out["train"] == TRAIN.tolist()
    # Garbage in every test image's blocks and human entries: nothing fitted may change.
    rng = np.random.default_rng(5)
    blocks2, human2 = blocks.copy(), human.copy()
    blocks2[TEST] = rng.uniform(0, 3, blocks2[TEST].shape).astype(np.float32)
    human2[TEST, :] = rng.normal(size=(TEST.size, N))
    human2[:, TEST] = human2[TEST, :].T
    out2 = softmask.fit_softmask(params, blocks2, human2, TRAIN, TEST, score="r2",
                                 greedy_set=greedy, **FAST)
    assert _fitting_fields(out2) == _fitting_fields(out)
    assert out2["test_soft"] != out["test_soft"]
    assert out["hard_size"] == len(out["hard_set"])
    assert out["overlap_greedy"] == np.intersect1d(out["hard_set"], greedy).size


def test_reproducible_run_to_run(problem):
    params, _, human, blocks = problem
    a = softmask.fit_softmask(params, blocks, human, TRAIN, TEST, score="rho", **FAST)
    b = softmask.fit_softmask(params, blocks, human, TRAIN, TEST, score="rho", **FAST)
    assert a == b
    assert a["lambda"] in FAST["lambdas"] and len(a["mask"]) == 16
    assert all(0 < s <= FAST["path_steps"] for s in a["path_steps"])


def test_bad_input(problem):
    params, _, human, blocks = problem
    with pytest.raises(ValueError, match="share images"):
        softmask.fit_softmask(params, blocks, human, TRAIN, np.array([0, 1, 2]), score="r2")
    with pytest.raises(ValueError, match="ascending"):
        softmask.fit_softmask(params, blocks, human, TRAIN, TEST, score="r2", lambdas=(0.1, 0.0))
    with pytest.raises(ValueError, match="score"):
        softmask.fit_softmask(params, blocks, human, TRAIN, TEST, score="r3")
    with pytest.raises(ValueError, match=r"human matrix must be \[24, 24\]"):
        softmask.fit_softmask(params, blocks, human[:5, :5], TRAIN, TEST, score="r2")
    with pytest.raises(ValueError, match="test indices must lie"):
        inner.check_split(TRAIN, np.array([0, 1, 99]), N)
