"""The networks AIS runs on, by name: what each one ablates and how its head sees the maps.

Every architecture splits at its ablated layer (SPEC §1): a *trunk* from images to the ablated
feature maps ``maps: [n, h, w, M]`` (post-ReLU), and a *head* from those maps to the embedding
whose similarity geometry is compared with the human one. Between them, ``pool`` turns the maps
into the head's per-map inputs ``blocks: [n, M, B]`` such that zeroing map k zeroes exactly
``blocks[:, k]``. Two head families cover the models (`HEAD_FAMILIES`):

* ``'flatten_linear'``: blocks flattened in PyTorch's (C, H, W) order -> fc6 -> ReLU -> fc7 ->
  ReLU = embedding (-> fc8). Head params ``{'fc6', 'fc7', 'fc8'}``, each ``{'kernel', 'bias'}``.
* ``'gap'``: the embedding is the global average pool itself, ``blocks[..., 0]`` with B = 1
  (-> fc). Head params ``{'fc': {'kernel', 'bias'}}``.

Parameters are always ``{'trunk': ..., 'head': ...}``; ``trunk_apply(params['trunk'], images)``
gives the maps. Models never load weights (`ais_jax.weights`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax

from ais_jax.models import alexnet, resnet50, vgg16, vgg19

HEAD_FAMILIES = ("flatten_linear", "gap")
# The head layer that gives the logits, per family (its bias has one entry per class).
CLASSIFIER_LAYER = {"flatten_linear": "fc8", "gap": "fc"}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One network family member, as the engine and the runner need it.

    Attributes:
      name: registry key (``'vgg16'``, ...), also the ``architecture`` of converted weights.
      ablated_layer: the layer whose maps are ablated (``'conv5_3'``, ...).
      maps: M, the number of feature maps of that layer.
      head_family: one of `HEAD_FAMILIES`.
      trunk_apply: ``(trunk_params, images [n, H, W, 3]) -> maps [n, h, w, M]``.
      pool: ``maps [n, h, w, M] -> blocks [n, M, B]``.
      head_apply: ``(head_params, blocks [n, M, B]) -> (emb [n, D], logits [n, classes])``: the
        model's own head forward, the plain reference path every fast path is tested against.
      param_shapes: ``num_classes -> {'trunk': ..., 'head': ...}`` of `jax.ShapeDtypeStruct`.
      random_params: ``(key, num_classes) -> params``: seeded random weights (tests, demos,
        benchmarks only).
    """

    name: str
    ablated_layer: str
    maps: int
    head_family: str
    trunk_apply: Callable[[dict, jax.Array], jax.Array]
    pool: Callable[[jax.Array], jax.Array]
    head_apply: Callable[[dict, jax.Array], tuple[jax.Array, jax.Array]]
    param_shapes: Callable[[int], dict]
    random_params: Callable[[jax.Array, int], dict]


def _vgg16_trunk(trunk_params: dict, images: jax.Array) -> jax.Array:
    return vgg16.VGG16Trunk().apply({"params": trunk_params}, images)


def _vgg16_head(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """fc6 -> ReLU -> fc7 -> ReLU (-> fc8) on flattened blocks: VGG-16, VGG-19 and AlexNet."""
    embed, classes = head_params["fc8"]["kernel"].shape
    model = vgg16.VGG16Head(num_classes=classes, embed_dim=embed)
    return model.apply({"params": head_params}, blocks, method=vgg16.VGG16Head.from_blocks)


ARCHITECTURES: dict[str, Architecture] = {
    "vgg16": Architecture(
        name="vgg16", ablated_layer="conv5_3", maps=vgg16.NUM_MAPS,
        head_family="flatten_linear", trunk_apply=_vgg16_trunk, pool=vgg16.pool_blocks,
        head_apply=_vgg16_head, param_shapes=vgg16.param_shapes, random_params=vgg16.random_params),
    "vgg19": Architecture(
        name="vgg19", ablated_layer=vgg19.ABLATED_LAYER, maps=vgg19.NUM_MAPS,
        head_family="flatten_linear", trunk_apply=vgg19.trunk_apply, pool=vgg16.pool_blocks,
        head_apply=_vgg16_head, param_shapes=vgg19.param_shapes, random_params=vgg19.random_params),
    "alexnet": Architecture(
        name="alexnet", ablated_layer=alexnet.ABLATED_LAYER, maps=alexnet.NUM_MAPS,
        head_family="flatten_linear", trunk_apply=alexnet.trunk_apply, pool=alexnet.pool_blocks,
        head_apply=_vgg16_head, param_shapes=alexnet.param_shapes,
        random_params=alexnet.random_params),
    "resnet50": Architecture(
        name="resnet50", ablated_layer=resnet50.ABLATED_LAYER, maps=resnet50.NUM_MAPS,
        head_family="gap", trunk_apply=resnet50.trunk_apply, pool=resnet50.pool_blocks,
        head_apply=resnet50.head_apply, param_shapes=resnet50.param_shapes,
        random_params=resnet50.random_params),
}


def architecture(name: str) -> Architecture:
    """The registered architecture ``name``.

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: "
                         f"{', '.join(ARCHITECTURES)}") from None
