"""VGG-19 (torchvision configuration E) in Flax, split at the last convolution, conv5_4.

The trunk is VGG-16's (`ais_jax.models.vgg16.VGG16Trunk`) with one more convolution in blocks
3, 4 and 5; pool5, the 7x7 adaptive pool and the fc6 -> fc7 (-> fc8) head are VGG-16's own
(`vgg16.pool_blocks`, `vgg16.VGG16Head`). Parameters ``{'trunk': {'conv1_1': ..., ...,
'conv5_4': ...}, 'head': {'fc6', 'fc7', 'fc8'}}`` in the layout of `ais_jax.models.vgg16`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ais_jax.models import vgg16

ABLATED_LAYER = "conv5_4"
NUM_MAPS = vgg16.NUM_MAPS  # 512

# torchvision `features[:36]` of configuration E: (name, output channels), "M" = 2x2/2 max-pool.
TRUNK_LAYOUT = (
    ("conv1_1", 64), ("conv1_2", 64), "M",
    ("conv2_1", 128), ("conv2_2", 128), "M",
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), "M",
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512), ("conv4_4", 512), "M",
    ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512), ("conv5_4", 512),
)  # fmt: skip


class VGG19(nn.Module):
    """Trunk + head. Returns ``(logits, {'conv5_4': acts, 'penultimate': emb})``."""

    num_classes: int = 1000

    def setup(self):
        self.trunk = vgg16.VGG16Trunk(TRUNK_LAYOUT)
        self.head = vgg16.VGG16Head(self.num_classes)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Args: images ``[n, H, W, 3]``. Returns logits and acts ``[n, H/16, W/16, 512]``."""
        acts = self.trunk(images)
        penultimate, logits = self.head(acts)
        return logits, {ABLATED_LAYER: acts, "penultimate": penultimate}


def trunk_apply(trunk_params: dict, images: jax.Array) -> jax.Array:
    """``images [n, H, W, 3] -> conv5_4 maps [n, H/16, W/16, 512]`` (post-ReLU)."""
    return vgg16.VGG16Trunk(TRUNK_LAYOUT).apply({"params": trunk_params}, images)


def param_shapes(num_classes: int) -> dict:
    """The parameter pytree's shapes (as `jax.ShapeDtypeStruct`), without allocating it."""
    dummy = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    return jax.eval_shape(VGG19(num_classes).init, jax.random.key(0), dummy)["params"]


def random_params(key: jax.Array, num_classes: int = 1000) -> dict:
    """Random VGG-19 parameters (`vgg16.numpy_he_normal_params`); tests and demos only."""
    return jax.device_put(vgg16.numpy_he_normal_params(key, param_shapes(num_classes)))
