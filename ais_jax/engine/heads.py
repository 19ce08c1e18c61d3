"""The head protocol: which family a head belongs to, and its plain forward (SPEC §12).

The engine sees a network as its per-map inputs ``blocks: [n, M, B]`` (zeroing feature map k
zeroes exactly ``blocks[:, k]``) and the head parameters. Two families cover the models, told
apart by the parameters' structure alone (`head_family`), so that every engine entry point takes
``(head_params, blocks, ...)`` whatever the network:

* ``'flatten_linear'`` (VGG-16/19, AlexNet): head params ``{'fc6', 'fc7', 'fc8'}``, each
  ``{'kernel' [in, out], 'bias' [out]}``; blocks flattened in PyTorch's (C, H, W) order ->
  fc6 -> ReLU -> fc7 -> ReLU = embedding -> fc8. M, B and the widths are read from the arrays
  (VGG-16: 512 x 49 -> 4096 -> 4096; AlexNet: 256 x 36 -> 4096 -> 4096).
* ``'gap'`` (ResNet-50): head params ``{'fc': {'kernel' [M, classes], 'bias'}}``; blocks
  ``[n, M, 1]`` are the global average pool of the post-ReLU maps, which *is* the embedding;
  logits = fc(embedding). Its ablations have closed forms (`ais_jax.engine.gap`).

`head_forward` is the plain "run the head" of either family: the reference semantics every fast
path is tested against (``method='vmap'`` / ``'naive'`` of the kernels run it on masked blocks).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ais_jax.models.vgg16 import PRECISION

FAMILIES = ("flatten_linear", "gap")
_LAYERS = {"flatten_linear": ("fc6", "fc7", "fc8"), "gap": ("fc",)}


def head_family(head_params: dict) -> str:
    """The family of a head, from the names of its layers.

    Args:
      head_params: ``params['head']``.

    Returns:
      ``'flatten_linear'`` (layers fc6, fc7, fc8) or ``'gap'`` (layer fc).

    Raises:
      ValueError: any other structure (the message names the keys found and the ones expected).
    """
    keys = tuple(sorted(head_params)) if isinstance(head_params, dict) else None
    for family, layers in _LAYERS.items():
        if keys == tuple(sorted(layers)) and all(
                isinstance(head_params[k], dict) and {"kernel", "bias"} <= set(head_params[k])
                for k in layers):
            return family
    raise ValueError(
        "head params must be {'fc6', 'fc7', 'fc8'} (flatten_linear: VGG, AlexNet) or {'fc'} "
        "(gap: ResNet), each with 'kernel' and 'bias'; got "
        f"{list(keys) if keys is not None else type(head_params).__name__}")


def embedding_width(head_params: dict) -> int:
    """D, the width of the embedding the similarities are computed on: the classifier's input
    width (fc8's for flatten_linear, e.g. VGG-16's 4096; fc's for gap, which is M)."""
    layer = "fc8" if head_family(head_params) == "flatten_linear" else "fc"
    return int(head_params[layer]["kernel"].shape[0])


def dense(x: jax.Array, layer: dict) -> jax.Array:
    """A fully connected layer ``x @ kernel + bias`` in full float32.

    ``[..., in] -> [..., out]``.
    """
    out = jnp.einsum("...i,io->...o", x, layer["kernel"], precision=PRECISION)
    return out + layer["bias"].reshape((1,) * (out.ndim - 1) + (-1,))


def head_forward(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The plain head forward of either family: blocks -> (embedding, logits).

    Args:
      head_params: ``params['head']`` (`head_family` decides the family).
      blocks: ``[..., M, B]`` per-map inputs (``B = 1`` for a gap head).

    Returns:
      (emb ``[..., D]``, logits ``[..., classes]``); ``D = M`` for a gap head.
    """
    if head_family(head_params) == "gap":
        emb = blocks[..., 0]  # the global average pool is the embedding
        return emb, dense(emb, head_params["fc"])
    x = blocks.reshape(*blocks.shape[:-2], blocks.shape[-2] * blocks.shape[-1])
    emb = jax.nn.relu(dense(jax.nn.relu(dense(x, head_params["fc6"])), head_params["fc7"]))
    return emb, dense(emb, head_params["fc8"])
