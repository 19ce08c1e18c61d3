"""AlexNet (torchvision layout, the "one weird trick" variant) in Flax, split at conv5.

torchvision's ``features``: conv1 64 11x11/4 pad 2, ReLU, max-pool 3/2; conv2 192 5x5 pad 2,
ReLU, max-pool 3/2; conv3 384, conv4 256, conv5 256 (3x3 pad 1, each + ReLU); max-pool 3/2;
then a 6x6 adaptive average pool and ``classifier``: fc6 9216 -> 4096, ReLU, fc7 4096 -> 4096,
ReLU, fc8 (dropouts are the identity at evaluation).

The ablated layer is conv5 after its ReLU: 256 maps, 13x13 at 224x224. The head sees them
after the max-pool and the adaptive pool as ``blocks: [n, 256, 36]``, flattened in PyTorch's
(C, H, W) order into fc6: the head family ``'flatten_linear'``, computed by VGG-16's own head
(`ais_jax.models.vgg16.VGG16Head`). Parameters ``{'trunk': {'conv1', ..., 'conv5'},
'head': {'fc6', 'fc7', 'fc8'}}``, kernels HWIO / ``[in, out]`` (fc6's rows in (C, H, W) order).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ais_jax.models import vgg16

PRECISION = vgg16.PRECISION
ABLATED_LAYER = "conv5"
NUM_MAPS = 256  # channels of conv5
POOL_SIZE = 6  # adaptive average pool output (6x6)
BLOCK = POOL_SIZE * POOL_SIZE  # fc6 inputs per map (36)
EMBED_DIM = 4096

# (name, output channels, kernel size, stride, padding, max-pool after the ReLU)
TRUNK_LAYOUT = (
    ("conv1", 64, 11, 4, 2, True),
    ("conv2", 192, 5, 1, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 256, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, False),
)


def max_pool(x: jax.Array) -> jax.Array:
    """torchvision AlexNet's 3x3 stride-2 max-pool (floor mode): ``[n, h, w, c]``."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


def pool_blocks(acts: jax.Array) -> jax.Array:
    """The last max-pool + adaptive average pool to 6x6, grouped per map in (C, H, W) order.

    Zeroing map k of ``acts`` zeroes exactly ``blocks[:, k]``.

    Args:
      acts: ``[n, h, w, 256]`` post-ReLU conv5 activations (13x13 at 224x224).

    Returns:
      ``[n, 256, 36]`` fc6 inputs; ``blocks.reshape(n, -1)`` is the torch flatten.
    """
    x = max_pool(acts)
    ph = jnp.asarray(vgg16.adaptive_pool_matrix(x.shape[-3], POOL_SIZE))
    pw = jnp.asarray(vgg16.adaptive_pool_matrix(x.shape[-2], POOL_SIZE))
    x = jnp.einsum("...hwc,ih,jw->...cij", x, ph, pw, precision=PRECISION)
    return x.reshape(*x.shape[:-2], BLOCK)


class AlexNetTrunk(nn.Module):
    """conv1 ... conv5 with ReLUs and two max-pools: image -> conv5 maps."""

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images ``[n, H, W, 3]`` normalised. Returns acts ``[n, h, w, 256]``."""
        x = images
        for name, features, size, stride, pad, pool in TRUNK_LAYOUT:
            conv = nn.Conv(features, (size, size), strides=stride, padding=pad,
                           precision=PRECISION, name=name)
            x = nn.relu(conv(x))
            x = max_pool(x) if pool else x
        return x


class AlexNet(nn.Module):
    """Trunk + head. Returns ``(logits, {'conv5': acts, 'penultimate': emb})``."""

    num_classes: int = 1000

    def setup(self):
        self.trunk = AlexNetTrunk()
        self.head = vgg16.VGG16Head(self.num_classes, EMBED_DIM)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        acts = self.trunk(images)
        penultimate, logits = self.head.from_blocks(pool_blocks(acts))
        return logits, {ABLATED_LAYER: acts, "penultimate": penultimate}


def trunk_apply(trunk_params: dict, images: jax.Array) -> jax.Array:
    """``images [n, H, W, 3] -> conv5 maps [n, h, w, 256]`` (post-ReLU)."""
    return AlexNetTrunk().apply({"params": trunk_params}, images)


def param_shapes(num_classes: int) -> dict:
    """The parameter pytree's shapes (as `jax.ShapeDtypeStruct`), without allocating it."""
    dummy = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    return jax.eval_shape(AlexNet(num_classes).init, jax.random.key(0), dummy)["params"]


def random_params(key: jax.Array, num_classes: int = 1000) -> dict:
    """Random AlexNet parameters (`vgg16.numpy_he_normal_params`); tests and demos only."""
    return jax.device_put(vgg16.numpy_he_normal_params(key, param_shapes(num_classes)))
