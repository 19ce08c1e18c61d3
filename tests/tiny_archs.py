"""Small architectures built from `ais_jax.models.registry.Architecture`, for tests only.

``tiny_arch(name, stride, maps)``: one 3x3 conv (3 -> M), ReLU, average pool by ``stride``
(maps ``[n, H/stride, W/stride, M]``). Two head families:

* ``'flatten_linear'``: a 2 x 2 adaptive average pool (blocks ``[n, M, 4]`` in PyTorch's
  (C, H, W) order) -> fc6 (4 M -> 48) -> ReLU -> fc7 (48 -> 48) -> ReLU = embedding -> fc8;
* ``'gap'``: the global average pool (blocks ``[n, M, 1]``) = embedding -> fc.

Register one with ``monkeypatch.setitem(registry.ARCHITECTURES, arch.name, arch)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.models.registry import Architecture

HI = jax.lax.Precision.HIGHEST
EMBED = 48


def _trunk(stride: int):
    def apply(trunk_params: dict, images: jax.Array) -> jax.Array:
        conv = trunk_params["conv"]
        x = jax.lax.conv_general_dilated(images, conv["kernel"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         precision=HI)
        x = x + conv["bias"].reshape(1, 1, 1, -1)
        n, h, w, m = x.shape
        x = x.reshape(n, h // stride, stride, w // stride, stride, m).mean(axis=(2, 4))
        return jax.nn.relu(x)  # [n, h / stride, w / stride, M]
    return apply


def _pool_2x2(maps: jax.Array) -> jax.Array:
    n, h, w, m = maps.shape
    pooled = maps.reshape(n, 2, h // 2, 2, w // 2, m).mean(axis=(2, 4))  # [n, 2, 2, M]
    return pooled.transpose(0, 3, 1, 2).reshape(n, m, 4)  # [n, M, 4], (C, H, W) order


def _pool_gap(maps: jax.Array) -> jax.Array:
    return maps.mean(axis=(1, 2))[..., None]  # [n, M, 1]


def _dense(x: jax.Array, layer: dict) -> jax.Array:
    return jnp.dot(x, layer["kernel"], precision=HI) + layer["bias"][None, :]


def _head_flatten(head: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = blocks.reshape(blocks.shape[0], -1)
    emb = jax.nn.relu(_dense(jax.nn.relu(_dense(x, head["fc6"])), head["fc7"]))
    return emb, _dense(emb, head["fc8"])


def _head_gap(head: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    emb = blocks[..., 0]
    return emb, _dense(emb, head["fc"])


def tiny_arch(name: str, *, stride: int = 8, maps: int = 6,
              head_family: str = "flatten_linear") -> Architecture:
    """A registered-style architecture (see the module docstring)."""
    def shapes(num_classes: int) -> dict:
        f32 = np.float32
        s = jax.ShapeDtypeStruct
        trunk = {"conv": {"kernel": s((3, 3, 3, maps), f32), "bias": s((maps,), f32)}}
        if head_family == "gap":
            head = {"fc": {"kernel": s((maps, num_classes), f32), "bias": s((num_classes,), f32)}}
        else:
            head = {"fc6": {"kernel": s((4 * maps, EMBED), f32), "bias": s((EMBED,), f32)},
                    "fc7": {"kernel": s((EMBED, EMBED), f32), "bias": s((EMBED,), f32)},
                    "fc8": {"kernel": s((EMBED, num_classes), f32),
                            "bias": s((num_classes,), f32)}}
        return {"trunk": trunk, "head": head}

    def random(key: jax.Array, num_classes: int = 10) -> dict:
        tree = shapes(num_classes)
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        keys = jax.random.split(key, len(leaves))
        out = []
        for k, leaf in zip(keys, leaves, strict=True):
            fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 1
            scale = np.sqrt(2.0 / fan_in) if len(leaf.shape) > 1 else 0.1
            out.append(jax.random.normal(k, leaf.shape, jnp.float32) * scale)
        return jax.tree_util.tree_unflatten(treedef, out)

    return Architecture(
        name=name, ablated_layer="conv1", maps=maps, head_family=head_family,
        trunk_apply=_trunk(stride), pool=_pool_gap if head_family == "gap" else _pool_2x2,
        head_apply=_head_gap if head_family == "gap" else _head_flatten, param_shapes=shapes,
        random_params=random)
