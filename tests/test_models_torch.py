"""AlexNet, VGG-19 and ResNet-50: converted torchvision-layout weights reproduce torch's forward
pass, through the registry's protocol (trunk -> pool -> head) that the engine uses.

Each torch model is built by hand in torchvision's exact layout (tests/torch_*.py), with random
He-normal weights and, for ResNet-50, random BatchNorm running statistics; it is saved as a
checkpoint, converted by `weights_convert` and loaded by `ais_jax.weights.load_model`. Relative
error throughout: ``max|flax - torch| / max|torch|`` over a whole output, float32.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from torch_alexnet import random_alexnet
from torch_resnet50 import random_resnet50
from torch_vgg19 import random_vgg19

from ais_jax import weights
from ais_jax.models import alexnet, registry, resnet50, vgg19
from weights_convert.checkpoint import convert_checkpoint

NUM_CLASSES = 565  # Ecoset's
TOLERANCE = 1e-5
IMAGES = 2

# model name -> (torch builder, ablated layer, maps, grid at 224x224, a non-square (H, W) and
# the grid there). ResNet's 200x232 gives odd sizes inside (25 -> 13, 29 -> 15), where the
# stride-2 paddings must round as torch's do; AlexNet's 160x224 gives a 4x6 grid after the
# last max-pool, which the 6x6 adaptive pool spreads over overlapping bins.
CASES = {
    "alexnet_ecoset": (random_alexnet, "conv5", 256, (13, 13), (160, 224), (9, 13)),
    "vgg19_imagenet": (random_vgg19, "conv5_4", 512, (14, 14), (224, 192), (14, 12)),
    "resnet50_ecoset": (random_resnet50, "layer4", 2048, (7, 7), (200, 232), (7, 8)),
}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|: error relative to the reference ``b``'s scale."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module", params=list(CASES))
def converted(request, tmp_path_factory):
    """``(model name, torch model, params, metadata, architecture)`` after a zip checkpoint of
    the torch model went through the converter and the loader."""
    name = request.param
    model = CASES[name][0](NUM_CLASSES, seed=len(name))
    root = tmp_path_factory.mktemp(name)
    torch.save(model.state_dict(), root / "model.pth")
    out = convert_checkpoint(name, root / "model.pth", root / "model.safetensors")[0]
    params, metadata, arch = weights.load_model(out)
    return name, model, params, metadata, arch


def test_loaded_architecture_and_metadata(converted):
    name, _, params, metadata, arch = converted
    _, layer, maps, *_ = CASES[name]
    assert metadata["architecture"] == arch.name == weights.MODEL_ARCHITECTURES[name]
    assert metadata["model"] == name and metadata["num_classes"] == str(NUM_CLASSES)
    assert (arch.ablated_layer, arch.maps) == (layer, maps)
    assert weights.flat_shapes(params) == weights.flat_shapes(arch.param_shapes(NUM_CLASSES))


@pytest.mark.parametrize("square", [True, False], ids=["224x224", "non-square"])
def test_forward_matches_torch(converted, square):
    name, model, params, _, arch = converted
    _, layer, maps, grid224, size, grid = CASES[name]
    height, width = (224, 224) if square else size
    images = np.random.default_rng(height + width).standard_normal((IMAGES, height, width, 3))
    images = images.astype(np.float32)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in
                model.forward_all(torch.from_numpy(images.transpose(0, 3, 1, 2))).items()}
    acts = jax.jit(arch.trunk_apply)(params["trunk"], images)  # [n, h, w, M]
    emb, logits = jax.jit(lambda p, a: arch.head_apply(p, arch.pool(a)))(params["head"], acts)
    got = {layer: np.asarray(acts).transpose(0, 3, 1, 2), "penultimate": np.asarray(emb),
           "logits": np.asarray(logits)}
    assert got[layer].shape == (IMAGES, maps, *(grid224 if square else grid))
    assert got["logits"].shape == (IMAGES, NUM_CLASSES)
    # The random weights keep the network alive: a dead one would compare zeros with zeros.
    assert np.mean(want[layer] > 0) > 0.1 and np.mean(want["penultimate"] > 0) > 0.1
    for key in (layer, "penultimate", "logits"):
        err = relative_error(got[key], want[key])
        assert err <= TOLERANCE, f"{name} {key} at {height}x{width}: relative error {err:.2e}"


@pytest.mark.parametrize("name", sorted(registry.ARCHITECTURES))
def test_zeroing_a_map_zeroes_exactly_its_block(name):
    arch = registry.architecture(name)
    grid = {"vgg16": (14, 13), "vgg19": (14, 13), "alexnet": (13, 9), "resnet50": (7, 6)}[name]
    acts = np.random.default_rng(0).uniform(0, 1, (2, *grid, arch.maps)).astype(np.float32)
    blocks = np.asarray(arch.pool(acts))  # [n, M, B]
    assert blocks.shape[:2] == (2, arch.maps)
    assert blocks.shape[2] == (1 if arch.head_family == "gap" else blocks.shape[2])
    k = arch.maps // 3
    ablated = np.asarray(arch.pool(acts * (np.arange(arch.maps) != k)))
    assert np.all(ablated[:, k] == 0)
    np.testing.assert_array_equal(np.delete(ablated, k, axis=1), np.delete(blocks, k, axis=1))


@pytest.mark.parametrize("name", ["alexnet", "resnet50"])
def test_random_params_are_seeded_and_keep_activations_alive(name):
    arch = registry.architecture(name)
    params = arch.random_params(jax.random.key(1), 7)
    again = arch.random_params(jax.random.key(1), 7)
    assert weights.flat_shapes(params) == weights.flat_shapes(arch.param_shapes(7))
    assert all(np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True))
    images = np.random.default_rng(0).standard_normal((2, 96, 96, 3)).astype(np.float32)
    acts = jax.jit(arch.trunk_apply)(params["trunk"], images)
    emb, logits = arch.head_apply(params["head"], arch.pool(acts))
    assert 0.2 < np.mean(np.asarray(acts) > 0) < 0.95
    for x in (acts, emb, logits):
        assert 0.05 < float(np.std(np.asarray(x))) < 20


@pytest.mark.parametrize("name, module", [("alexnet", alexnet.AlexNet), ("vgg19", vgg19.VGG19),
                                          ("resnet50", resnet50.ResNet50)])
def test_whole_module_is_trunk_pool_head(name, module):
    arch = registry.architecture(name)
    params = arch.random_params(jax.random.key(2), 7)
    images = np.random.default_rng(1).standard_normal((2, 80, 96, 3)).astype(np.float32)
    logits, inter = jax.jit(module(7).apply)({"params": params}, images)
    acts = jax.jit(arch.trunk_apply)(params["trunk"], images)
    emb, want = arch.head_apply(params["head"], arch.pool(acts))
    np.testing.assert_array_equal(np.asarray(inter[arch.ablated_layer]), np.asarray(acts))
    np.testing.assert_allclose(np.asarray(inter["penultimate"]), np.asarray(emb), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(want), rtol=1e-6, atol=1e-6)
