"""Converted model weights on disk: one safetensors file per model, and their loaders.

The format: a safetensors file whose tensor names are the Flax parameter paths joined by '/'
(``trunk/conv1_1/kernel``, ``head/fc6/kernel``, ...) in Flax layout, float32, with string
metadata recording where the weights came from (`save_params`). Files are made by
``python -m weights_convert`` (which needs torch); reading them here does not. Files of the AIS
networks also record ``num_classes`` and ``architecture`` (`MODEL_ARCHITECTURES`; files from
before it are VGG-16), and `load_model` loads any of them, checked against the architecture's
parameter shapes.

Integrity: `save_params` records ``tensors_sha256`` (`tensors_digest` of the tensors written)
in the metadata and `load_params` recomputes it from the tensors it read, so a file damaged
after conversion (flipped bytes, a partial copy) is refused by name. The same digest identifies
the weights in every cache key (`ais_jax.engine.activations`): it changes whenever the tensors do,
e.g. after re-converting with ``--force``, while ``source_sha256`` names only the checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

import jax
import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

from ais_jax import __version__, storage
from ais_jax.models import registry

# Bump when the layout of the saved parameters changes; older files must then be re-converted.
# 2: metadata records tensors_sha256.
FORMAT_VERSION = "2"

VGG16_MODELS = ("imagenet", "ecoset")  # the two VGG-16 checkpoints of SPEC §1
# Model name -> registered architecture (`ais_jax.models.registry`) of the AIS networks.
MODEL_ARCHITECTURES = {
    "imagenet": "vgg16", "ecoset": "vgg16", "vgg16_imagenet": "vgg16", "vgg16_ecoset": "vgg16",
    "vgg19_imagenet": "vgg19",
    "alexnet_imagenet": "alexnet", "alexnet_ecoset": "alexnet",
    "resnet50_imagenet": "resnet50", "resnet50_ecoset": "resnet50",
}  # fmt: skip
# Other names of the same weights: they read and write the file of the name they stand for.
MODEL_ALIASES = {"vgg16_imagenet": "imagenet", "vgg16_ecoset": "ecoset"}
AIS_MODELS = tuple(MODEL_ARCHITECTURES)  # every network AIS runs on, by --model name
MODELS = AIS_MODELS + ("transalnet_dense",)
# How messages name each architecture.
ARCHITECTURE_TITLES = {"vgg16": "VGG-16", "vgg19": "VGG-19", "alexnet": "AlexNet",
                       "resnet50": "ResNet-50"}

# Metadata every converted file carries (`save_params` adds the last three itself).
REQUIRED_METADATA = ("model", "source_file", "source_sha256", "format_version", "ais_jax_version",
                     "tensors_sha256")


class MissingWeightsError(FileNotFoundError):
    """Converted weights are not where they were looked for; the message says how to make them."""


def flat_shapes(tree: Mapping) -> dict[str, tuple[int, ...]]:
    """Flattens a nested tree of arrays or ShapeDtypeStructs to ``'a/b/kernel' -> shape``.

    The one flattening of parameter shapes: conversion (``weights_convert.keymap``) checks a
    checkpoint against it, `load_vgg16` a converted file.
    """
    flat = traverse_util.flatten_dict(dict(tree), sep="/")
    return {k: tuple(v.shape) for k, v in flat.items()}


def tensors_digest(flat: Mapping[str, np.ndarray]) -> str:
    """sha256 hex digest of named tensors: names, dtypes, shapes and bytes, in name order.

    Independent of the file's layout (header order, metadata), so it names exactly the numbers
    a model computes with.

    Args:
      flat: ``'trunk/conv1_1/kernel' -> array`` (`save_params` and `load_params` use the
        flattened names of the parameter tree).
    """
    h = hashlib.sha256()
    for name in sorted(flat):
        a = np.ascontiguousarray(flat[name])
        header = f"{name}\0{a.dtype.str}\0{a.shape}\0".encode()
        h.update(len(header).to_bytes(8, "little") + header)
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _reconvert_hint(metadata: Mapping[str, str]) -> str:
    model = metadata.get("model", "MODEL")
    source = metadata.get("source_file") or "/path/to/checkpoint.pth"
    return (f"convert the checkpoint again: python -m weights_convert --model={model} "
            f"--src={source} --force (plus the same --out, if one was used)")


def canonical_model(model: str) -> str:
    """The name ``model``'s weights are kept and recorded under (`MODEL_ALIASES` resolved).

    Raises:
      ValueError: for an unknown model name.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return MODEL_ALIASES.get(model, model)


def weights_path(model: str) -> Path:
    """Where the converted weights of ``model`` live: ``cache_dir()/weights/{model}.safetensors``
    (an alias such as ``vgg16_ecoset`` shares the file of ``ecoset``).

    Args:
      model: one of `MODELS`.

    Raises:
      ValueError: for an unknown model name.
    """
    return storage.cache_dir() / "weights" / f"{canonical_model(model)}.safetensors"


def save_params(
    path: str | os.PathLike, params: Mapping, metadata: Mapping[str, str]
) -> dict[str, str]:
    """Writes a parameter pytree and its metadata atomically as one safetensors file.

    Args:
      path: the output file.
      params: nested dict of arrays (Flax layout).
      metadata: string metadata, at least ``model``, ``source_file`` and ``source_sha256``;
        ``format_version``, ``ais_jax_version`` and ``tensors_sha256`` are added.

    Returns:
      The metadata as written.

    Raises:
      ais_jax.storage.WriteError: the file cannot be written (named, with the OS reason);
        nothing is left under ``path`` then.
    """
    path = Path(path)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta.update(format_version=FORMAT_VERSION, ais_jax_version=__version__)
    flat = traverse_util.flatten_dict(dict(params), sep="/")
    tensors = {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in flat.items()}
    meta["tensors_sha256"] = tensors_digest(tensors)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(f"{path}: metadata lacks {', '.join(missing)}")
    with storage.atomic_path(path) as tmp:
        try:
            safetensors.numpy.save_file(tensors, str(tmp), metadata=meta)
        except safetensors.SafetensorError as e:  # its I/O errors are not OSErrors
            raise storage.WriteError(
                path, str(e).removeprefix("Error while serializing: ")) from e
    return meta


def load_params(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Reads a file written by `save_params`.

    Args:
      path: a converted ``.safetensors`` file.

    Returns:
      ``(params, metadata)``: the nested dict of float32 NumPy arrays, and the string metadata
      (``metadata['tensors_sha256']``: the verified `tensors_digest` of ``params``).

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: naming the file, if it is not a readable ais_jax weights file of this format,
        or its tensors do not match the digest recorded at conversion (a damaged file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            flat = {k: f.get_tensor(k) for k in f.keys()}
    except (safetensors.SafetensorError, OSError) as e:
        raise ValueError(
            f"{path}: not a readable safetensors weights file (truncated or corrupt?): {e}. "
            "Convert the checkpoint again with `python -m weights_convert`."
        ) from e
    if "format_version" in metadata and metadata["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: weights format version {metadata['format_version']}, but this ais_jax "
            f"({__version__}) reads version {FORMAT_VERSION}; " + _reconvert_hint(metadata)
        )
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ValueError(
            f"{path}: not an ais_jax weights file (its metadata lacks {', '.join(missing)}); "
            "make one with `python -m weights_convert`"
        )
    digest = tensors_digest(flat)
    if digest != metadata["tensors_sha256"]:
        raise ValueError(
            f"{path}: the file is damaged: its tensors have sha256 {digest}, not the "
            f"{metadata['tensors_sha256']} recorded when it was converted; "
            + _reconvert_hint(metadata)
        )
    return traverse_util.unflatten_dict(flat, sep="/"), metadata


def _missing_message(model: str | None, path: Path) -> str:
    if model is None:
        return (
            f"{path}: no converted weights file there. Make one from a PyTorch checkpoint with\n"
            "  python -m weights_convert --model=MODEL --src=/path/to/checkpoint.pth "
            f"--out={path}\n"
            f"(MODEL: one of {', '.join(MODELS)}; conversion needs torch: "
            "pip install -e '.[convert]')"
        )
    lines = [f"No converted weights for {model!r}: {path} does not exist. Obtain them with"]
    if model in MODEL_ARCHITECTURES:
        lines.append(f"  python -m weights_convert --model={model} --download")
        lines.append("or, from a checkpoint you already have,")
    lines.append(f"  python -m weights_convert --model={model} --src=/path/to/checkpoint.pth")
    lines.append(
        "(conversion needs torch: pip install -e '.[convert]'). Converted weights are kept "
        f"under {storage.cache_dir() / 'weights'}; set ${storage.CACHE_ENV} to use another "
        "cache directory, the same for converting and for running."
    )
    return "\n".join(lines)


def _resolve(model_or_path: str | os.PathLike) -> tuple[str | None, Path]:
    """(model name or None, file path) for a model name or a path."""
    if isinstance(model_or_path, str) and model_or_path in MODELS:
        return model_or_path, weights_path(model_or_path)
    return None, Path(model_or_path).expanduser()


def load_converted(model_or_path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Loads converted weights by model name (from the cache) or from an explicit file.

    Args:
      model_or_path: one of `MODELS` (looked up with `weights_path`), or a path to a file
        written by ``python -m weights_convert``.

    Returns:
      ``(params, metadata)`` as `load_params`.

    Raises:
      MissingWeightsError: if the file does not exist; the message gives the commands that
        make it.
      ValueError: if the file is unreadable, or holds another model than the one named.
    """
    model, path = _resolve(model_or_path)
    if not path.is_file():
        raise MissingWeightsError(_missing_message(model, path))
    params, metadata = load_params(path)
    if model and metadata["model"] != canonical_model(model):
        raise ValueError(f"{path}: holds {metadata['model']!r} weights, expected {model!r}")
    return params, metadata


def architecture_of(metadata: Mapping[str, str]) -> registry.Architecture:
    """The registered architecture of converted weights (files without the key are VGG-16)."""
    name = metadata.get("architecture") or MODEL_ARCHITECTURES.get(metadata.get("model"), "vgg16")
    return registry.architecture(name)


def load_model(
    model_or_path: str | os.PathLike, *, architecture: str | None = None
) -> tuple[dict, dict[str, str], registry.Architecture]:
    """Loads converted weights of any AIS network, checked against its parameter shapes.

    Args:
      model_or_path: one of `AIS_MODELS` (``'ecoset'``, ``'alexnet_ecoset'``, ...), or a path
        to a converted file.
      architecture: if given, the registered architecture the weights must be (``'vgg16'``).

    Returns:
      ``(params, metadata, arch)``: ``params`` is ``{'trunk': ..., 'head': ...}`` as JAX
      arrays for ``arch.trunk_apply`` / ``arch.head_apply``; ``metadata['num_classes']`` is the
      number of classes (a string, as all safetensors metadata); ``metadata['tensors_sha256']``
      is the verified digest of ``params``, the key under which caches
      (`ais_jax.engine.activations`) keep what these weights computed; ``arch`` is
      `architecture_of` the metadata (VGG-16 for files converted before it was recorded).

    Raises:
      MissingWeightsError: if the weights were not converted yet (the message says how).
      ValueError: naming the file, if they are not the weights of an AIS network (of
        ``architecture``), or their tensors do not fit it; every problem is listed together.
    """
    params, metadata = load_converted(model_or_path)
    path = _resolve(model_or_path)[1]
    wanted = ARCHITECTURE_TITLES.get(architecture, architecture) if architecture else None
    what = wanted or "an AIS network (" + ", ".join(ARCHITECTURE_TITLES.values()) + ")"
    if "num_classes" not in metadata:
        raise ValueError(f"{path}: holds {metadata['model']!r} weights, not {what} "
                         "(its metadata has no num_classes)")
    try:
        arch = architecture_of(metadata)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if architecture is not None and arch.name != architecture:
        raise ValueError(f"{path}: holds {ARCHITECTURE_TITLES.get(arch.name, arch.name)} "
                         f"weights ({metadata['model']!r}), not {wanted}")
    num_classes = int(metadata["num_classes"])
    expected, got = flat_shapes(arch.param_shapes(num_classes)), flat_shapes(params)
    problems = [f"{k}: missing (expected shape {s})" for k, s in expected.items() if k not in got]
    problems += [f"{k}: unexpected tensor" for k in got if k not in expected]
    problems += [
        f"{k}: shape {got[k]}, expected {s}"
        for k, s in expected.items()
        if k in got and got[k] != s
    ]
    if problems:
        more = f"; ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        title = ARCHITECTURE_TITLES.get(arch.name, arch.name)
        raise ValueError(f"{path}: not {title} weights with {num_classes} classes: "
                         + "; ".join(problems[:5]) + more)
    return jax.device_put(params), metadata, arch


def load_vgg16(model_or_path: str | os.PathLike = "ecoset") -> tuple[dict, dict[str, str]]:
    """Loads converted VGG-16 weights: `load_model` for ``architecture='vgg16'``.

    Args:
      model_or_path: ``'imagenet'``, ``'ecoset'`` (or their aliases ``'vgg16_imagenet'``,
        ``'vgg16_ecoset'``), or a path to a converted file.

    Returns:
      ``(params, metadata)`` as `load_model`, ready for
      ``VGG16(num_classes).apply({'params': params}, images)``.

    Raises:
      MissingWeightsError: if the weights were not converted yet (the message says how).
      ValueError: naming the file and the key, if they are not VGG-16 weights.
    """
    params, metadata, _ = load_model(model_or_path, architecture="vgg16")
    return params, metadata
