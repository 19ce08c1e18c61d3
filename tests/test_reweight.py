"""Feature reweighting (SPEC §10): the ridge fit against lstsq and the closed form, planted
weights recovered, and test images kept out of fitting and of the penalty choice."""

import numpy as np
import pytest

from ais_jax.fitting import inner, reweight

N = 30
TEST = np.arange(1, N, 5)  # 6 test images
TRAIN = np.setdiff1d(np.arange(N), TEST)


def _embeddings(rng, n, d):
    # Sparse and non-negative, as post-ReLU features are.
    return np.maximum(rng.normal(size=(n, d)) + rng.normal(size=(1, d)), 0)


def _planted(seed=0, n=N, d=12, noise=0.05):
    """Human similarity that *is* a weighted inner product (plus an intercept and noise)."""
    rng = np.random.default_rng(seed)
    emb = _embeddings(rng, n, d)
    w = rng.normal(size=d)
    human = (emb * w) @ emb.T + 0.7
    e = rng.normal(size=(n, n)) * noise * human.std()
    return emb, human + (e + e.T) / 2, w


@pytest.mark.parametrize("solver", ["primal", "dual"])
@pytest.mark.parametrize("d", [8, 40])  # fewer and more features than the 28 pairs
def test_ridge_equals_lstsq_on_the_augmented_system_and_the_closed_form(solver, d):
    rng = np.random.default_rng(d)
    emb = _embeddings(rng, 8, d)
    h = rng.normal(size=(8, 8))
    alphas = [0.03, 1.0, 30.0]
    ws, w0s = reweight.ridge_pairs(emb, h, alphas, solver=solver)
    x = np.array([emb[i] * emb[j] for i in range(8) for j in range(i + 1, 8)])  # [28, d]
    y = np.array([h[i, j] for i in range(8) for j in range(i + 1, 8)])
    np.testing.assert_array_equal(reweight.pair_features(emb), x)
    xc, yc = x - x.mean(0), y - y.mean()
    assert reweight.pair_scale(emb) == pytest.approx(np.trace(xc.T @ xc) / d, rel=1e-12)
    for a, alpha in enumerate(alphas):
        # lstsq: [X 1; sqrt(alpha) I 0] [w; w0] = [y; 0]  (the intercept is not penalised)
        aug = np.block([[x, np.ones((28, 1))], [np.sqrt(alpha) * np.eye(d), np.zeros((d, 1))]])
        sol = np.linalg.lstsq(aug, np.concatenate([y, np.zeros(d)]), rcond=None)[0]
        np.testing.assert_allclose(ws[a], sol[:d], rtol=1e-8, atol=1e-10)
        assert w0s[a] == pytest.approx(sol[d], rel=1e-8, abs=1e-10)
        closed = np.linalg.solve(xc.T @ xc + alpha * np.eye(d), xc.T @ yc)
        np.testing.assert_allclose(ws[a], closed, rtol=1e-8, atol=1e-10)
        pred = reweight.predicted_similarity(emb, ws[a], w0s[a])
        np.testing.assert_allclose(pred[np.triu_indices(8, 1)], x @ ws[a] + w0s[a], rtol=1e-12)


def test_planted_weights_are_recovered_out_of_sample():
    emb, human, w = _planted()
    out = reweight.fit_reweight(emb, human, TRAIN, TEST, score="rho",
                                relative_alphas=(1e-6, 1e-3, 1.0, 1e3))
    assert out["relative_alpha"] <= 1e-3  # little noise: the weakest penalties win
    assert out["test_score"] > 0.98 and out["train_score"] > 0.98
    ws, _ = reweight.ridge_pairs(emb[TRAIN], human[np.ix_(TRAIN, TRAIN)], [out["alpha"]])
    assert np.corrcoef(ws[0], w)[0, 1] > 0.99


def _fitting_fields(out):
    return {k: v for k, v in out.items() if k != "test_score"}


def test_test_images_never_enter_fitting_or_the_penalty_choice():
    emb, human, _ = _planted(1, noise=1.0)
    out = reweight.fit_reweight(emb, human, TRAIN, TEST, score="r2")
    chunks = [np.array(v) for v in out["inner_val"]]
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks)), TRAIN)  # a partition
    assert all(np.intersect1d(c, TEST).size == 0 for c in chunks)
    assert out["train"] == TRAIN.tolist() and out["test"] == TEST.tolist()
    rng = np.random.default_rng(9)
    emb2, human2 = emb.copy(), human.copy()
    emb2[TEST] = rng.uniform(0, 5, emb2[TEST].shape)
    human2[TEST, :] = rng.normal(size=(TEST.size, N))
    human2[:, TEST] = human2[TEST, :].T
    out2 = reweight.fit_reweight(emb2, human2, TRAIN, TEST, score="r2")
    assert _fitting_fields(out2) == _fitting_fields(out)
    assert out2["test_score"] != out["test_score"]


def test_reproducible_run_to_run():
    emb, human, _ = _planted(2, noise=0.5)
    a = reweight.fit_reweight(emb, human, TRAIN, TEST, score="r2", seed=3)
    assert a == reweight.fit_reweight(emb, human, TRAIN, TEST, score="r2", seed=3)
    assert a["relative_alpha"] in reweight.DEFAULT_RELATIVE_ALPHAS


def test_inner_folds_partition_the_training_images():
    splits = inner.kfold_split(TRAIN, 4, seed=0)
    for fit, val in splits:
        assert np.intersect1d(fit, val).size == 0
        np.testing.assert_array_equal(np.union1d(fit, val), TRAIN)
    fit, val = inner.holdout_split(TRAIN, 0.2, seed=0)
    assert val.size == 5 and np.intersect1d(fit, val).size == 0


def test_bad_input():
    emb, human, _ = _planted()
    with pytest.raises(ValueError, match="penalties must be > 0"):
        reweight.ridge_pairs(emb, human, [0.0])
    with pytest.raises(ValueError, match="solver"):
        reweight.ridge_pairs(emb, human, [1.0], solver="svd")
    with pytest.raises(ValueError, match=r"human matrix must be \[30, 30\]"):
        reweight.fit_reweight(emb, human[:4, :4], TRAIN, TEST, score="r2")
    with pytest.raises(ValueError, match="share images"):
        reweight.fit_reweight(emb, human, TRAIN, np.array([0, 2, 3]), score="r2")
    with pytest.raises(ValueError, match="inner folds"):
        reweight.fit_reweight(emb, human, TRAIN, TEST, score="r2", inner_folds=12)
