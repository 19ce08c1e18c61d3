"""Ablation embeddings and similarities vs "zero the channel, run the head" (SPEC §2)."""

import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

from ais_jax.engine import ablation
from ais_jax.models.vgg16 import VGG16Head, pool_blocks


@pytest.fixture(scope="module", params=[(14, 18), (9, 9)], ids=["14x18", "9x9"])
def problem(request):
    params, acts, human = ref.synthetic_problem(3, n=6, hw=request.param, maps=10)
    return params, acts, human


def _plain_ablations(params, acts):
    """The reference semantics in float32: zero channel k of the activations, run the head."""
    model = VGG16Head(num_classes=params["fc8"]["bias"].shape[0],
                      embed_dim=params["fc7"]["bias"].shape[0])
    embs, logits = [], []
    for k in range(acts.shape[-1]):
        e, logit = model.apply({"params": params}, jnp.asarray(acts).at[..., k].set(0))
        embs.append(e)
        logits.append(logit)
    return np.stack(embs, 1), np.stack(logits, 1)  # [n, M, D], [n, M, C]


@pytest.mark.parametrize("method", ["fast", "vmap"])
def test_ablation_embeddings_equal_plain_head(problem, method):
    params, acts, _ = problem
    want_emb, want_logits = _plain_ablations(params, acts)
    emb, logits = ablation.ablation_embeddings(
        params, pool_blocks(jnp.asarray(acts)), method=method, with_logits=True, chunk_maps=3
    )
    assert emb.shape == want_emb.shape and logits.shape == want_logits.shape
    np.testing.assert_allclose(emb, want_emb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)
    # and the float64 semantics
    hp64 = ref.head_params64(params)
    for k in (1, 4):
        keep = np.arange(acts.shape[-1]) != k
        e64 = ref.head(hp64, ref.ablate(acts.astype(np.float64), keep))[0]
        np.testing.assert_allclose(emb[:, k], e64, rtol=1e-5, atol=1e-5)


def test_full_embeddings_match_model(problem):
    params, acts, _ = problem
    model = VGG16Head(num_classes=5, embed_dim=64)
    want = model.apply({"params": params}, jnp.asarray(acts))
    got = ablation.full_embeddings(params, pool_blocks(jnp.asarray(acts)))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_zero_map_ablation_is_the_full_embedding_exactly(problem):
    params, acts, _ = problem
    blocks = pool_blocks(jnp.asarray(acts))
    full, _ = ablation.full_embeddings(params, blocks)
    emb = ablation.ablation_embeddings(params, blocks, chunk_maps=4)
    np.testing.assert_array_equal(emb[:, 0], full)  # map 0: zero in every image
    np.testing.assert_array_equal(emb[[0, 2], 1], full[np.array([0, 2])])  # zero in 0 and 2


def test_chunk_size_does_not_change_the_result(problem):
    params, acts, _ = problem
    blocks = pool_blocks(jnp.asarray(acts))
    a = ablation.ablation_embeddings(params, blocks, chunk_maps=1)
    b = ablation.ablation_embeddings(params, blocks, memory_budget_bytes=1)  # forces chunk 1
    c = ablation.ablation_embeddings(params, blocks, chunk_maps=100)
    np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(a, b)


def test_similarities_equal_corrcoef_of_ablations(problem):
    params, acts, _ = problem
    blocks = pool_blocks(jnp.asarray(acts))
    sims = ablation.ablation_similarities(params, blocks, chunk_maps=4)
    hp64 = ref.head_params64(params)
    a64 = acts.astype(np.float64)
    n, m = acts.shape[0], acts.shape[-1]
    full64 = ref.head(hp64, a64)[0]
    np.testing.assert_allclose(sims.full, np.corrcoef(full64), atol=1e-6)
    for k in range(m):
        keep = np.arange(m) != k
        e_k = ref.head(hp64, ref.ablate(a64, keep))[0]  # [n, D]
        np.testing.assert_allclose(sims.global_[k], np.corrcoef(e_k), atol=1e-6)
        cross = np.corrcoef(e_k, full64)[:n, n:]  # corr(E[i, k], e_j)
        np.testing.assert_allclose(sims.per_image[:, k], cross, atol=1e-6)
    assert sims.zero_pairs.shape == (n, m)
    assert bool(sims.zero_pairs[:, 0].all()) and bool(sims.zero_pairs[0, 1])
    assert not bool(sims.zero_pairs[1, 1])
    np.testing.assert_array_equal(sims.global_[0], sims.full)
    np.testing.assert_array_equal(sims.per_image[:, 0], sims.full)
    np.testing.assert_array_equal(sims.per_image[0, 1], sims.full[0])


def test_vmap_similarities_equal_fast(problem):
    params, acts, _ = problem
    blocks = pool_blocks(jnp.asarray(acts))
    fast = ablation.ablation_similarities(params, blocks)
    slow = ablation.ablation_similarities(params, blocks, method="vmap", chunk_maps=3)
    for f, s in zip(fast, slow, strict=True):
        np.testing.assert_allclose(f, s, atol=1e-6)


def test_similarity_kernel_traces_once():
    params, acts, _ = ref.synthetic_problem(11, n=5, hw=(6, 6), maps=7)
    blocks = pool_blocks(jnp.asarray(acts))
    ablation.ablation_similarities(params, blocks, chunk_maps=3)
    before = ablation._similarities_kernel._cache_size()
    ablation.ablation_similarities(params, blocks * 2.0, chunk_maps=3)  # new data, same shapes
    ablation.ablation_similarities(params, blocks * 0.5, chunk_maps=3)
    assert ablation._similarities_kernel._cache_size() == before


def test_choose_chunk():
    assert ablation.choose_chunk(512, 100, memory_budget_bytes=100 * 64) == (64, 8)
    # the budget allows 100 maps: 512 maps in 6 equal steps of 86 (least padding)
    assert ablation.choose_chunk(512, 1, memory_budget_bytes=100) == (86, 6)
    assert ablation.choose_chunk(512, 1, n_devices=4, chunk_maps=1000) == (128, 1)
    assert ablation.choose_chunk(10, 10**9, memory_budget_bytes=1) == (1, 10)
    with pytest.raises(ValueError, match="chunk_maps"):
        ablation.choose_chunk(10, 1, chunk_maps=0)


def test_bad_inputs_are_named():
    params, acts, _ = ref.synthetic_problem(11, n=5, hw=(6, 6), maps=7)
    blocks = pool_blocks(jnp.asarray(acts))
    with pytest.raises(ValueError, match=r"fc6 kernel has 343 inputs .* \(5, 6, 49\)"):
        ablation.ablation_embeddings(params, blocks[:, :6])
    with pytest.raises(ValueError, match=r"\[n, maps, block\]"):
        ablation.ablation_similarities(params, blocks[0])
    with pytest.raises(ValueError, match="method"):
        ablation.ablation_embeddings(params, blocks, method="slow")
    with pytest.raises(ValueError, match="fc7"):
        ablation.full_embeddings({"fc6": params["fc6"]}, blocks)
