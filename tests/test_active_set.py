"""The exact active-set fc7 (issue #14) against the plain product, on full-size heads.

The active-set path skips fc6 units that are zero in every row of a group; the result must be
the same product up to float32 summation order. Checked on the real 4096 x 4096 fc7 and the
full-size random VGG-16 problem of the precision tests, at several fc6 sparsity levels (set by
a bias shift, as `experiments.bench` does), including an image whose fc6 is all inactive and
groups in which every unit is active.
"""

import full_size_problem as fsp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ais_jax.engine import ablation, active_set, selection

D = 4096


@pytest.fixture(scope="module")
def kernel():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.standard_normal((D, D), np.float32) * np.sqrt(2.0 / D))


def _groups(active_counts, rows=128, seed=1):
    """``[g, rows, D]`` non-negative groups whose union of non-zero columns has these sizes."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(active_counts), rows, D), np.float32)
    for g, k in enumerate(active_counts):
        cols = rng.choice(D, k, replace=False)
        vals = np.maximum(rng.standard_normal((rows, k)), 0).astype(np.float32)
        vals[0] = np.abs(vals[0]) + 0.1  # every chosen column is non-zero in some row
        x[g][:, cols] = vals
    return jnp.asarray(x)


def test_bucket_sizes_and_branches():
    sizes = active_set.bucket_sizes(D)
    assert sizes == tuple(256 * k for k in range(1, 11))
    counts = jnp.asarray([0, 1, 256, 257, 2560, 2561, D], jnp.int32)
    got = active_set.group_branch(counts, sizes)
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 9, 10, 10])  # 10 = the plain product


@pytest.mark.parametrize("counts", [(0, 1, 256, 300), (1000, 1500, 2560, 2561, D)])
def test_grouped_product_equals_plain(kernel, counts):
    x = _groups(counts)
    got = np.asarray(active_set.grouped_product(x, kernel), np.float64)
    plain = np.asarray(jnp.einsum("grd,do->gro", x, kernel,
                                  precision=jax.lax.Precision.HIGHEST), np.float64)
    x64, k64 = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    exact = np.einsum("grd,do->gro", x64, k64)
    scale = np.abs(x64) @ np.abs(k64)  # the size of each sum's terms
    for g, k in enumerate(counts):
        if k == 0:  # an all-inactive group: exactly zero, like the plain product
            assert np.all(got[g] == 0) and np.all(plain[g] == 0)
        elif k > active_set.bucket_sizes(D)[-1]:  # the plain branch: bit for bit
            np.testing.assert_array_equal(got[g], plain[g])
        else:  # the gathered branch: as exact as the plain product
            err_active = np.max(np.abs(got[g] - exact[g])) / np.max(scale[g])
            err_plain = np.max(np.abs(plain[g] - exact[g])) / np.max(scale[g])
            assert err_active <= max(2 * err_plain, 1e-6), (k, err_active, err_plain)


def _shifted_head(head, blocks, quantile):
    """The head with fc6 biases shifted so that ``1 - quantile`` of fc6 units are active (or,
    for ``'one image all active'``, every unit of one image)."""
    if quantile is None:
        return head
    pre = np.asarray(ablation.fc6_pre_activations(head, jnp.asarray(blocks)))
    if quantile == "one image all active":  # the image whose least fc6 unit is largest
        shift = pre.min(axis=1).max() - 1e-3
    else:
        shift = np.quantile(pre, quantile)
    bias = np.asarray(head["fc6"]["bias"]) - np.float32(shift)
    return {**head, "fc6": {**head["fc6"], "bias": jnp.asarray(bias, jnp.float32)}}


@pytest.fixture(scope="module")
def problem():
    head, _, blocks, human = fsp.problem()
    return head, blocks, human


def _group_fractions(head, blocks, order, rows=active_set.GROUP_ROWS):
    """``[n, 512 // rows]`` fraction of fc6 units active in some prefix of each greedy group."""
    w6 = np.asarray(head["fc6"]["kernel"]).reshape(512, 49, -1)[order]
    contrib = np.einsum("nmb,mbo->nmo", blocks[:, order], w6)  # [n, 512, D6]
    pre = np.asarray(head["fc6"]["bias"]) + np.cumsum(contrib, axis=1)
    return (pre > 0).reshape(len(blocks), -1, rows, pre.shape[-1]).any(axis=2).mean(axis=-1)


# None: the He-scaled head (50 % of fc6 active; most groups above the largest bucket, so the
# plain branch); 0.02: 98 % active (groups with every unit active); 0.75 and 0.95: trained-like
# and sparser (groups of the first prefixes with no unit active, whose embeddings are constant:
# NaN scores on both paths).
LEVELS = [None, 0.02, 0.75, 0.95]


@pytest.mark.parametrize("quantile", LEVELS)
def test_greedy_active_set_equals_plain(problem, quantile):
    head, blocks, human = problem
    head = _shifted_head(head, blocks, quantile)
    n = len(human)
    train, test = np.flatnonzero(np.arange(n) % 3 != 0), np.arange(0, n, 3)
    order = np.random.default_rng(2).permutation(512)
    fractions = _group_fractions(head, blocks, order)
    if quantile == 0.02:
        assert np.any(fractions == 1.0)  # some image's group has every unit active
    if quantile == 0.95:
        assert np.any(fractions == 0.0)  # and some has none
    # The same chunks of prefixes on both paths: the only difference is the fc7 product.
    kw = dict(train=train, test=test, score="r2", chunk_maps=active_set.GROUP_ROWS)
    plain = selection.greedy_curves(head, jnp.asarray(blocks), order, human, fc7_path="plain",
                                    **kw)
    active = selection.greedy_curves(head, jnp.asarray(blocks), order, human,
                                     fc7_path="active", **kw)
    for a, p in ((active.train_curve, plain.train_curve), (active.test_curve, plain.test_curve)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(p))
        np.testing.assert_allclose(a, p, rtol=0, atol=1e-6, equal_nan=True)
    assert active.best_size == plain.best_size or np.isclose(
        plain.train_curve[active.best_size - 1], plain.train_curve[plain.best_size - 1],
        rtol=0, atol=1e-6)


@pytest.mark.parametrize("quantile", [None, "one image all active", 0.75, 0.95])
def test_ablation_active_set_equals_plain(problem, quantile):
    head, blocks, _ = problem
    head = _shifted_head(head, blocks, quantile)
    all_on = np.all(np.asarray(ablation.fc6_pre_activations(head, jnp.asarray(blocks))) > 0, 1)
    if quantile == "one image all active":
        assert np.any(all_on)
    dead = 5 if not all_on[5] else 6  # fc6 = bias: all inactive where the bias is below 0
    blocks = blocks.copy()
    blocks[dead] = 0
    plain = ablation.ablation_similarities(head, jnp.asarray(blocks), fc7_path="plain")
    active = ablation.ablation_similarities(head, jnp.asarray(blocks), fc7_path="active")
    np.testing.assert_array_equal(active.full, plain.full)
    np.testing.assert_allclose(active.global_delta, plain.global_delta, rtol=0, atol=1e-7)
    np.testing.assert_allclose(active.per_image_delta, plain.per_image_delta, rtol=0, atol=1e-7)
    # The all-zero image: its ablations change nothing, exactly.
    assert np.all(np.asarray(active.per_image_delta)[dead] == 0)
    emb_plain = ablation.ablation_embeddings(head, jnp.asarray(blocks[:6]), fc7_path="plain")
    emb_active = ablation.ablation_embeddings(head, jnp.asarray(blocks[:6]), fc7_path="active")
    scale = float(jnp.max(jnp.abs(emb_plain)))
    np.testing.assert_allclose(emb_active, emb_plain, rtol=0, atol=1e-6 * scale)


def test_auto_path_follows_the_measured_sparsity():
    if jax.default_backend() != "cpu":
        assert not active_set.resolve_path("auto", 0.1)  # not measured off CPU: plain
    else:
        assert active_set.resolve_path("auto", active_set.AUTO_MAX_ACTIVE_GREEDY)
        assert not active_set.resolve_path("auto", 0.5)
        # The ablation kernel paid for its gather at 50 % active; the greedy curve did not.
        assert active_set.resolve_path("auto", 0.5, "ablation")
        assert not active_set.resolve_path("auto", 0.6, "ablation")
    assert active_set.resolve_path("active", 0.9) and not active_set.resolve_path("plain", 0.1)
    with pytest.raises(ValueError, match="fc7 path"):
        active_set.resolve_path("sparse", 0.1)
    with pytest.raises(ValueError, match="kernel"):
        active_set.resolve_path("auto", 0.1, "fc8")
