"""The head protocol (#19): gap heads' closed forms against the plain zero-and-forward path.

float64 (x64 enabled inside the tests only): the closed forms of `ais_jax.engine.gap` equal the
float64 NumPy zero-and-forward loops to 1e-9. float32 (the public entry points): the fast
paths equal the plain 'vmap' / 'naive' reference paths and float64 to 1e-6; exact zeros where
a map is zero.
"""

import gap_problem as gp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ais_jax.engine import ablation, ais, gap, heads, selection
from ais_jax.fitting import reweight, softmask

N, M = 12, 40
TRAIN, TEST = np.arange(0, N - 4), np.arange(N - 4, N)
# Per-map levels with a lighter tail than at full size: with 40 maps a heavy tail lets one map
# carry ~98 % of an image's variance, whose removal no float32 path resolves to 1e-6 (measured:
# closed form 4e-6, plain path 8e-6). With 2048 maps the heavy tail is harmless
# (tests/test_precision_gap.py).
SHAPE = 1.5


@pytest.fixture(scope="module")
def small():
    head, acts, blocks, human = gp.problem(N, M, shape=SHAPE)
    return head, acts, blocks, human, gp.oracle(N, M, shape=SHAPE)


def test_head_family():
    w = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}
    assert heads.head_family({"fc6": w, "fc7": w, "fc8": w}) == "flatten_linear"
    assert heads.head_family({"fc": w}) == "gap"
    for bad in ({"fc6": w}, {"fc": w, "fc6": w}, {"fc": {"kernel": w["kernel"]}}, [w]):
        with pytest.raises(ValueError, match=r"\{'fc'\} \(gap"):
            heads.head_family(bad)
    blocks = jnp.zeros((3, 2, 4))  # gap heads need B = 1
    with pytest.raises(ValueError, match=r"gap head needs blocks \[n, M, 1\]"):
        ablation.ablation_similarities({"fc": w}, blocks)
    with pytest.raises(ValueError, match="no fc6"):
        ablation.fc6_active_fraction({"fc": w}, blocks[..., :1])


def test_plain_forward_is_the_pool_then_fc(small):
    head, acts, blocks, *_ = small
    want_emb, want_logits = gp.forward64(head, gp.pool64(acts))
    for emb, logits in (heads.head_forward(head, jnp.asarray(blocks)),
                        ablation.full_embeddings(head, jnp.asarray(blocks)),
                        ablation.plain_head(head, jnp.asarray(blocks))):
        np.testing.assert_allclose(emb, want_emb, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-6)


def test_closed_forms_equal_zero_and_forward_in_float64(small):
    head, acts, _, human, want = small
    x64 = gp.pool64(acts)
    h32 = np.asarray(human, np.float32).astype(np.float64)  # what the AIS functions see
    want_ais = gp.oracle_for(head, x64, h32)
    with jax.enable_x64(True):
        full, glob, per = gap.ablation_changes(jnp.asarray(x64), chunk=16)
        assert full.dtype == jnp.float64
        np.testing.assert_allclose(full, want["z"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(full[None] + glob, want["global_"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(full[:, None] + per, want["per_image"], rtol=0, atol=1e-12)
        sims = ablation.AblationSimilarities(full, glob, per, jnp.asarray(x64 == 0))
        for score in ("rho", "r2"):
            got = np.asarray(ais.global_ais(sims, h32, score=score))
            np.testing.assert_allclose(got, want_ais[f"global_{score}"], rtol=0, atol=1e-9)
        got = np.asarray(ais.per_image_ais(sims, h32))
        np.testing.assert_allclose(got, want_ais["per_ais"], rtol=0, atol=1e-9)
        order = selection.rank_maps(want_ais["global_rho"])
        for chunk in (16, 7):
            s_train, s_test = gap.prefix_scores(
                jnp.asarray(x64), jnp.asarray(order), jnp.asarray(TRAIN), jnp.asarray(TEST),
                jnp.asarray(h32[np.ix_(TRAIN, TRAIN)]), jnp.asarray(h32[np.ix_(TEST, TEST)]),
                chunk=chunk, score="r2")
            sizes = np.arange(2, M + 1)  # size 1: every correlation is 1 (undefined score)
            for images, got in ((TRAIN, s_train), (TEST, s_test)):
                ref = gp.greedy64(head, x64, order, h32, images, sizes)
                np.testing.assert_allclose(np.asarray(got)[sizes - 1], ref, rtol=0, atol=1e-9)


def test_similarities_fast_equal_plain_path_and_float64(small):
    head, _, blocks, _, want = small
    fast = ablation.ablation_similarities(head, jnp.asarray(blocks))
    plain = ablation.ablation_similarities(head, jnp.asarray(blocks), method="vmap",
                                           chunk_maps=7)
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_allclose(f, p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.global_, want["global_"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.per_image, want["per_image"], rtol=0, atol=1e-6)
    # Zero maps: no-op ablations, changes exactly 0 on both paths.
    for sims in (fast, plain):
        assert bool(sims.zero_pairs[:, 0].all()) and bool(sims.zero_pairs[[0, 2], 1].all())
        assert not np.any(np.asarray(sims.global_delta[0]))
        assert not np.any(np.asarray(sims.per_image_delta[np.array([0, 2]), 1]))
    assert ablation.ablation_similarities(head, jnp.asarray(blocks), chunk_maps=3).full.shape \
        == (N, N)
    with pytest.raises(ValueError, match="fc7 path"):
        ablation.ablation_similarities(head, jnp.asarray(blocks), fc7_path="fast")


def test_ais_on_gap_heads(small):
    head, _, blocks, human, want = small
    sims = ablation.ablation_similarities(head, jnp.asarray(blocks))
    got = np.asarray(ais.global_ais(sims, human, score="rho"))
    np.testing.assert_allclose(got, want["global_rho"], rtol=0, atol=1e-6)
    per = np.asarray(ais.per_image_ais(sims, human))
    np.testing.assert_allclose(per, want["per_ais"], rtol=0, atol=1e-6)
    assert got[0] == 0 and np.all(per[:, 0] == 0) and per[0, 1] == 0 and per[2, 1] == 0


@pytest.mark.parametrize("method", ["fast", "vmap"])
def test_ablation_embeddings(small, method):
    head, acts, blocks, *_ = small
    emb, logits = ablation.ablation_embeddings(head, jnp.asarray(blocks), method=method,
                                               with_logits=True, chunk_maps=6)
    assert emb.shape == (N, M, M) and logits.shape == (N, M, 7)
    x = gp.pool64(acts)
    for k in (1, 5, M - 1):
        masked = x.copy()
        masked[:, k] = 0
        want_emb, want_logits = gp.forward64(head, masked)
        np.testing.assert_allclose(emb[:, k], want_emb, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(logits[:, k], want_logits, rtol=1e-5, atol=1e-6)
    full = ablation.full_embeddings(head, jnp.asarray(blocks))[0]
    np.testing.assert_array_equal(emb[:, 0], full)  # map 0 is zero in every image


def test_greedy_curves_equal_plain_path_and_float64(small):
    head, _, blocks, human, want = small
    order = selection.rank_maps(want["global_rho"])
    kw = dict(train=TRAIN, test=TEST, score="r2")
    inc = selection.greedy_curves(head, jnp.asarray(blocks), order, human, **kw)
    naive = selection.greedy_curves(head, jnp.asarray(blocks), order, human, method="naive",
                                    **kw)
    other_chunk = selection.greedy_curves(head, jnp.asarray(blocks), order, human,
                                          chunk_maps=5, **kw)
    x64 = gp.pool64(blocks[..., 0][:, None, None, :])
    sizes = np.arange(2, M + 1)
    for images, curve, naive_curve, curve5 in (
            (TRAIN, inc.train_curve, naive.train_curve, other_chunk.train_curve),
            (TEST, inc.test_curve, naive.test_curve, other_chunk.test_curve)):
        ref = gp.greedy64(head, x64, order, human, images, sizes)
        np.testing.assert_allclose(curve[sizes - 1], ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(curve5[sizes - 1], ref, rtol=0, atol=1e-6)  # chunk 5
        # the naive float32 path is the less exact one on 4 test images (6 pairs)
        np.testing.assert_allclose(naive_curve[sizes - 1], ref, rtol=0, atol=1e-5)
    # Prefix 1: every correlation is 1; undefined on every path, and it never wins.
    assert np.isnan(inc.train_curve[0]) and np.isnan(naive.train_curve[0])
    assert inc.best_size == naive.best_size == int(np.nanargmax(
        gp.greedy64(head, x64, order, human, TRAIN, np.arange(1, M + 1))[1:])) + 2
    np.testing.assert_allclose(inc.train_curve[-1], float(np.corrcoef(
        want["z"][np.ix_(TRAIN, TRAIN)][np.triu_indices(TRAIN.size, 1)],
        human[np.ix_(TRAIN, TRAIN)][np.triu_indices(TRAIN.size, 1)])[0, 1] ** 2), atol=1e-6)


def test_greedy_undefined_prefixes_are_nan(small):
    head, _, blocks, human, _ = small
    blocks = np.array(blocks)
    blocks[0, 3:5] = 0  # image 0 (a training image): maps 3 and 4 zero
    order = np.r_[0, 3, 4, 5, np.arange(6, M), 1, 2]
    res = selection.greedy_curves(head, jnp.asarray(blocks), order, human, train=TRAIN,
                                  test=TEST)
    # {0}: all zero; {0, 3}: one non-zero map, every correlation 1; {0, 3, 4}: image 0's
    # prefix embedding is all zero (constant); from {0, 3, 4, 5} on: defined.
    assert np.isnan(res.train_curve[:3]).all() and not np.isnan(res.train_curve[3:]).any()
    assert np.isnan(res.test_curve[:2]).all() and not np.isnan(res.test_curve[2:]).any()
    assert res.n_nan_train == 3 and res.n_nan_test == 2 and res.best_size > 3
    x64 = blocks[..., 0].astype(np.float64)
    ref = gp.greedy64(head, x64, order, human, TRAIN, np.arange(4, M + 1))
    np.testing.assert_allclose(res.train_curve[3:], ref, rtol=0, atol=1e-6)


def test_softmask_on_a_gap_head(small):
    head, acts, blocks, human, _ = small
    mask = np.random.default_rng(0).uniform(0.05, 1.0, M).astype(np.float32)
    contrib = softmask.map_contributions(head, jnp.asarray(blocks))
    got = softmask.masked_embeddings(head, contrib, jnp.asarray(mask))
    np.testing.assert_allclose(got, gp.pool64(acts) * mask, rtol=1e-6, atol=1e-7)
    # A planted set: the human matrix is the similarity of the first 10 maps only.
    planted = np.arange(2, 12)
    x = gp.pool64(acts)
    human_planted = np.corrcoef(x[:, planted])
    res = softmask.fit_softmask(head, blocks, human_planted, TRAIN, TEST, score="rho",
                                lambdas=(0.0, 0.1), path_steps=30, final_steps=30)
    assert res["train_soft"] > float(np.corrcoef(
        np.corrcoef(x[TRAIN])[np.triu_indices(TRAIN.size, 1)],
        human_planted[np.ix_(TRAIN, TRAIN)][np.triu_indices(TRAIN.size, 1)])[0, 1])
    m = np.asarray(res["mask"])
    others = np.setdiff1d(np.arange(2, M), planted)  # maps 0, 1: (partly) zero, no gradient
    assert m[planted].mean() > m[others].mean() + 0.1, (m[planted], m[others])


def test_reweighting_runs_on_gap_embeddings(small):
    head, acts, blocks, human, _ = small
    emb = np.asarray(ablation.full_embeddings(head, jnp.asarray(blocks))[0])
    np.testing.assert_allclose(emb, gp.pool64(acts), rtol=1e-6, atol=1e-7)  # D = M = 40
    res = reweight.fit_reweight(emb, human, TRAIN, TEST, score="r2", inner_folds=2)
    assert np.isfinite(res["train_score"]) and np.isfinite(res["test_score"])
