"""ResNet-50 V1.5 (torchvision layout) in Flax, inference only, split after ``layer4``.

torchvision's ResNet-50: conv1 7x7/2 (no bias), bn1, ReLU, max-pool 3x3/2 pad 1; ``layer1`` ...
``layer4`` of 3, 4, 6, 3 bottleneck blocks (1x1 -> 3x3 -> 1x1 convolutions, widths 64 ... 512,
4x expansion), the stride on the 3x3 convolution (V1.5) and a 1x1 convolution + BatchNorm
``downsample`` shortcut on the first block of each layer; global average pool; ``fc``.
BatchNorm runs in inference mode with its running statistics (eps 1e-5), which are ordinary
parameters here (`ais_jax.models.transalnet.EvalBatchNorm`): nothing is mutable.

The ablated layer is ``layer4``'s output after its final ReLU: 2048 maps, 7x7 at 224x224. The
head family is ``'gap'``: ``blocks = mean over (h, w)``, ``[n, 2048, 1]``, IS the embedding, and
the logits are ``fc(emb)``. Parameters: ``{'trunk': {'conv1', 'bn1', 'layer1_block0': {'conv1',
'bn1', 'conv2', 'bn2', 'conv3', 'bn3', 'downsample_conv', 'downsample_bn'}, 'layer1_block1':
..., ...}, 'head': {'fc': {'kernel': [2048, classes], 'bias'}}}``: kernels HWIO (no conv
biases) and ``[in, out]``; BatchNorm ``{scale, bias, mean, var}``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.models import vgg16
from ais_jax.models.transalnet import EvalBatchNorm

PRECISION = vgg16.PRECISION
ABLATED_LAYER = "layer4"
EXPANSION = 4
# (bottleneck width, blocks, stride of the first block) of layer1 ... layer4.
LAYERS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
NUM_MAPS = LAYERS[-1][0] * EXPANSION  # 2048
BN_EPS = 1e-5


def _conv(features: int, size: int, stride: int, name: str) -> nn.Conv:
    return nn.Conv(features, (size, size), strides=stride, padding=size // 2, use_bias=False,
                   precision=PRECISION, name=name)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (4x width), each with BatchNorm; shortcut; ReLU."""

    width: int
    stride: int = 1
    downsample: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x ``[n, h, w, c]``. Returns ``[n, h/stride, w/stride, 4 * width]``."""
        y = nn.relu(EvalBatchNorm(BN_EPS, name="bn1")(_conv(self.width, 1, 1, "conv1")(x)))
        y = nn.relu(EvalBatchNorm(BN_EPS, name="bn2")(_conv(self.width, 3, self.stride,
                                                            "conv2")(y)))
        y = EvalBatchNorm(BN_EPS, name="bn3")(_conv(self.width * EXPANSION, 1, 1, "conv3")(y))
        if self.downsample:
            x = _conv(self.width * EXPANSION, 1, self.stride, "downsample_conv")(x)
            x = EvalBatchNorm(BN_EPS, name="downsample_bn")(x)
        return nn.relu(y + x)


class ResNet50Trunk(nn.Module):
    """The stem and layer1 ... layer4: image -> layer4 maps."""

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images ``[n, H, W, 3]`` normalised. Returns acts ``[n, h, w, 2048]``
        (h = ceil(H / 32) for even sizes; 7x7 at 224x224)."""
        x = nn.relu(EvalBatchNorm(BN_EPS, name="bn1")(_conv(64, 7, 2, "conv1")(images)))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # pads with -inf
        for i, (width, blocks, stride) in enumerate(LAYERS):
            layer = f"layer{i + 1}"
            for b in range(blocks):
                x = Bottleneck(width, stride if b == 0 else 1, downsample=b == 0,
                               name=f"{layer}_block{b}")(x)
        return x


def pool_blocks(acts: jax.Array) -> jax.Array:
    """The global average pool, one block per map: ``[n, h, w, 2048] -> [n, 2048, 1]``.

    Zeroing map k of ``acts`` zeroes exactly ``blocks[:, k]`` (the embedding's coordinate k).
    """
    return jnp.mean(acts, axis=(-3, -2))[..., None]


class ResNet50Head(nn.Module):
    """``fc`` on the pooled embedding."""

    num_classes: int = 1000

    @nn.compact
    def __call__(self, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Args: blocks ``[..., 2048, 1]``. Returns (emb ``[..., 2048]``, logits)."""
        emb = blocks[..., 0]
        return emb, nn.Dense(self.num_classes, precision=PRECISION, name="fc")(emb)


class ResNet50(nn.Module):
    """Trunk + head. Returns ``(logits, {'layer4': acts, 'penultimate': emb})``."""

    num_classes: int = 1000

    def setup(self):
        self.trunk = ResNet50Trunk()
        self.head = ResNet50Head(self.num_classes)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        acts = self.trunk(images)
        emb, logits = self.head(pool_blocks(acts))
        return logits, {ABLATED_LAYER: acts, "penultimate": emb}


def trunk_apply(trunk_params: dict, images: jax.Array) -> jax.Array:
    """``images [n, H, W, 3] -> layer4 maps [n, h, w, 2048]`` (post-ReLU)."""
    return ResNet50Trunk().apply({"params": trunk_params}, images)


def head_apply(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``blocks [n, 2048, 1] -> (emb [n, 2048], logits [n, classes])``."""
    classes = head_params["fc"]["kernel"].shape[-1]
    return ResNet50Head(classes).apply({"params": head_params}, blocks)


def param_shapes(num_classes: int) -> dict:
    """The parameter pytree's shapes (as `jax.ShapeDtypeStruct`), without allocating it."""
    dummy = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    return jax.eval_shape(ResNet50(num_classes).init, jax.random.key(0), dummy)["params"]


def random_params(key: jax.Array, num_classes: int = 1000) -> dict:
    """Random ResNet-50 parameters with random BatchNorm statistics; tests and demos only.

    He-normal kernels (`vgg16.numpy_he_normal_params`); every BatchNorm gets a shift and
    running mean in [-0.1, 0.1), a running variance in [0.5, 1.5) and a scale in [0.5, 1),
    except the last of each block (``bn3``), whose scale in [0.1, 0.3) keeps the sum over 16
    residual blocks at a stable scale.

    Returns:
      The parameter tree of float32 JAX arrays.
    """
    kernel_key, bn_key = jax.random.split(key)
    params = vgg16.numpy_he_normal_params(kernel_key, param_shapes(num_classes))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(bn_key)).ravel())

    def draw(path, leaf):
        layer, name = path[-2].key, path[-1].key
        if "bn" not in layer:
            return leaf
        if name == "var":
            low, high = 0.5, 1.5
        elif name == "scale":
            low, high = (0.1, 0.3) if layer == "bn3" else (0.5, 1.0)
        else:  # mean, bias
            low, high = -0.1, 0.1
        return rng.uniform(low, high, leaf.shape).astype(np.float32)

    return jax.device_put(jax.tree_util.tree_map_with_path(draw, params))
