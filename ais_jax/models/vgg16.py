"""VGG-16 (torchvision layout) in Flax, split at the last convolution (SPEC §1).

Parameters are a pytree ``{'trunk': {...}, 'head': {...}}``:

* ``trunk/conv{b}_{i}/kernel``: ``[3, 3, c_in, c_out]`` (HWIO), ``.../bias``: ``[c_out]``
* ``head/fc6/kernel``: ``[25088, 4096]`` whose rows follow PyTorch's (C, H, W) flatten order,
  so that a converted torchvision ``classifier.0.weight`` is used unchanged (transposed only);
  ``head/fc7/kernel``: ``[4096, 4096]``; ``head/fc8/kernel``: ``[4096, num_classes]``.

The model never loads weights: see `ais_jax.weights.load_vgg16`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# AIS values are differences of correlations of order 1e-4: every product runs in full float32
# (on GPUs JAX's default precision would use TF32).
PRECISION = jax.lax.Precision.HIGHEST

NUM_MAPS = 512  # channels of conv5_3: "the feature maps"
POOL_SIZE = 7  # adaptive average pool output (7x7)
BLOCK = POOL_SIZE * POOL_SIZE  # fc6 inputs per map (49)
EMBED_DIM = 4096  # penultimate embedding size

# torchvision `features[:30]`: (name, output channels), "M" = 2x2/2 max-pool.
TRUNK_LAYOUT = (
    ("conv1_1", 64), ("conv1_2", 64), "M",
    ("conv2_1", 128), ("conv2_2", 128), "M",
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), "M",
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512), "M",
    ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512),
)  # fmt: skip


def adaptive_pool_matrix(size: int, out: int = POOL_SIZE) -> np.ndarray:
    """PyTorch's AdaptiveAvgPool index rule as an averaging matrix.

    Bin i covers ``[floor(i * size / out), ceil((i + 1) * size / out))``.

    Returns:
      ``[out, size]`` float32 matrix whose rows average the bins' inputs.
    """
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def pool_blocks(acts: jax.Array) -> jax.Array:
    """pool5 + adaptive average pool to 7x7, grouped per map in (C, H, W) order.

    Zeroing map k of ``acts`` zeroes exactly ``blocks[:, k]`` (SPEC §2).

    Args:
      acts: ``[n, h, w, 512]`` post-ReLU conv5_3 activations.

    Returns:
      ``[n, 512, 49]`` fc6 inputs; ``blocks.reshape(n, -1)`` is the torch flatten.
    """
    x = nn.max_pool(acts, (2, 2), strides=(2, 2), padding="VALID")  # floor mode, as torch
    ph = jnp.asarray(adaptive_pool_matrix(x.shape[-3]))
    pw = jnp.asarray(adaptive_pool_matrix(x.shape[-2]))
    x = jnp.einsum("...hwc,ih,jw->...cij", x, ph, pw, precision=PRECISION)
    return x.reshape(*x.shape[:-2], BLOCK)


class VGG16Trunk(nn.Module):
    """conv1_1 ... conv5_3 with ReLUs and four max-pools: image -> feature maps.

    ``layout`` is `TRUNK_LAYOUT`; VGG-19 (`ais_jax.models.vgg19`) passes its own.
    """

    layout: tuple = TRUNK_LAYOUT

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images ``[n, H, W, 3]`` normalised. Returns acts ``[n, H/16, W/16, 512]``."""
        x = images
        for layer in self.layout:
            if layer == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
            else:
                name, features = layer
                conv = nn.Conv(features, (3, 3), padding=1, precision=PRECISION, name=name)
                x = nn.relu(conv(x))
        return x


class VGG16Head(nn.Module):
    """pool5 -> adaptive pool 7x7 -> fc6 -> ReLU -> fc7 -> ReLU (-> fc8). Eval mode."""

    num_classes: int = 1000
    embed_dim: int = EMBED_DIM  # smaller only in tests of the kernels

    def setup(self):
        self.fc6 = nn.Dense(self.embed_dim, precision=PRECISION)
        self.fc7 = nn.Dense(self.embed_dim, precision=PRECISION)
        self.fc8 = nn.Dense(self.num_classes, precision=PRECISION)

    def __call__(self, acts: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Args: acts ``[..., h, w, 512]``. Returns (penultimate ``[..., 4096]``, logits)."""
        return self.from_blocks(pool_blocks(acts))

    def from_blocks(self, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Args: blocks ``[..., 512, 49]``. Returns (penultimate ``[..., 4096]``, logits)."""
        x = blocks.reshape(*blocks.shape[:-2], blocks.shape[-2] * blocks.shape[-1])
        penultimate = nn.relu(self.fc7(nn.relu(self.fc6(x))))
        return penultimate, self.fc8(penultimate)


class VGG16(nn.Module):
    """Trunk + head. Returns ``(logits, {'conv5_3': acts, 'penultimate': emb})``."""

    num_classes: int = 1000

    def setup(self):
        self.trunk = VGG16Trunk()
        self.head = VGG16Head(self.num_classes)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        acts = self.trunk(images)
        penultimate, logits = self.head(acts)
        return logits, {"conv5_3": acts, "penultimate": penultimate}


def param_shapes(num_classes: int) -> dict:
    """The parameter pytree's shapes (as `jax.ShapeDtypeStruct`), without allocating it."""
    dummy = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    return jax.eval_shape(VGG16(num_classes).init, jax.random.key(0), dummy)["params"]


def random_params(key: jax.Array, num_classes: int = 1000) -> dict:
    """Random VGG-16 parameters, for tests, benchmarks and the synthetic demo only.

    He-normal weights (std ``sqrt(2 / fan_in)``) and small positive biases keep activations at a
    stable scale through the 13 ReLU convolutions, unlike Flax's LeCun default which shrinks them
    by about 2x per layer.
    """
    return he_normal_params(key, param_shapes(num_classes))


def he_normal_params(key: jax.Array, shapes: dict) -> dict:
    """Random parameters of the tree ``shapes``: He-normal kernels, biases uniform in [0, 0.01).

    Every other leaf (e.g. BatchNorm's) also gets the small positive bias rule; callers that
    need something else overwrite those leaves.

    Args:
      key: the seed.
      shapes: a nested dict of `jax.ShapeDtypeStruct` (a ``param_shapes`` result).
    """
    treedef = jax.tree_util.tree_structure(shapes)
    shapes = jax.tree_util.tree_flatten_with_path(shapes)[0]
    keys = jax.random.split(key, len(shapes))
    leaves = []
    for (path, shape), k in zip(shapes, keys, strict=True):
        if path[-1].key == "kernel":
            fan_in = int(np.prod(shape.shape[:-1]))
            leaves.append(jax.random.normal(k, shape.shape) * np.sqrt(2.0 / fan_in))
        else:
            leaves.append(jax.random.uniform(k, shape.shape, maxval=0.01))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def numpy_he_normal_params(key: jax.Array, shapes: dict) -> dict:
    """`he_normal_params`' rules drawn by NumPy from one generator seeded by ``key``.

    Quick for networks of hundreds of tensors (ResNet-50), where `he_normal_params` compiles a
    random draw per distinct shape; VGG-16 keeps `he_normal_params` so that its random weights
    (and the demos built on them) stay bit-identical.

    Args:
      key: the seed (a `jax.random.key`).
      shapes: a nested dict of `jax.ShapeDtypeStruct` (a ``param_shapes`` result).

    Returns:
      The tree of float32 NumPy arrays.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())

    def draw(path, shape):
        if path[-1].key == "kernel":
            fan_in = int(np.prod(shape.shape[:-1]))
            return (rng.standard_normal(shape.shape, np.float32) * np.sqrt(2.0 / fan_in)).astype(
                np.float32)
        return rng.uniform(0.0, 0.01, shape.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)
