"""Reading PyTorch checkpoints safely, and converting one file into ais_jax's weights format.

Checkpoints are read with ``torch.load(weights_only=True)``: both the zip format (PyTorch >= 1.6)
and the legacy format, and no code pickled in the file is ever executed. torch is imported only
here, and only when a checkpoint is read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from ais_jax import weights
from ais_jax.models import registry

# Dict keys under which training scripts commonly nest the state dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
PARALLEL_PREFIX = "module."  # added by nn.DataParallel / DistributedDataParallel

# What torch.load raises on truncated or corrupt files (found by cutting real checkpoints at
# every offset): the zip reader raises RuntimeError/OSError, the legacy unpickler any of these.
_CORRUPT_FILE_ERRORS = (RuntimeError, OSError, EOFError, struct.error, IndexError, KeyError,
                        ValueError)


# How every torch.save file begins: a zip archive (PyTorch >= 1.6) or a pickle of protocol >= 2
# (the legacy format). Very old tar-format files carry "ustar" at byte 257.
CHECKPOINT_MAGICS = (b"PK\x03\x04", b"\x80")
_TAR_MAGIC_AT = (257, b"ustar")
_SNIFF_BYTES = 512

# What other files begin with, for a message that says what a file is instead of a checkpoint.
_KNOWN_STARTS = (
    (b"\x89HDF", "an HDF5 file (Keras .h5?)"),
    (b"\x1f\x8b", "a gzip archive: unpack it first"),
    (b"PK", "a zip archive but not a PyTorch one"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"7z\xbc\xaf", "a 7-zip archive: unpack it first"),
    (b"BZh", "a bzip2 archive: unpack it first"),
    (b"\xfd7zXZ", "an xz archive: unpack it first"),
)


def foreign_file_kind(head: bytes) -> str | None:
    """What a file is, judged from its first bytes, when it cannot be a PyTorch checkpoint.

    Args:
      head: the file's first bytes (512 suffice).

    Returns:
      None if ``head`` starts as a ``torch.save`` file (zip, pickle, legacy tar); otherwise a
      short description for a message: ``'HTML'``, ``'an empty file'``, ``'text'``, ...
    """
    if head.startswith(CHECKPOINT_MAGICS) or head[_TAR_MAGIC_AT[0]:].startswith(_TAR_MAGIC_AT[1]):
        return None
    if not head:
        return "an empty file"
    for magic, kind in _KNOWN_STARTS:
        if head.startswith(magic):
            return kind
    if len(head) >= 10 and head[8:10] == b'{"':
        return "a safetensors file: already converted? load it with --weights"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "HTML, e.g. an error or sign-in page saved instead of the file"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "XML or HTML"
    if text.startswith((b"{", b"[")):
        return "JSON text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "binary data of an unknown format"
    return "text"


def sniff_checkpoint(path: str | os.PathLike) -> None:
    """Refuses a file that cannot be a PyTorch checkpoint, saying what it looks like.

    Raises:
      CheckpointError: e.g. ``x.pth: not a PyTorch checkpoint (looks like HTML, ...)``.
    """
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        raise CheckpointError(f"{path}: cannot read this PyTorch checkpoint: the file is empty "
                              "(0 bytes; a truncated download or copy?). Download or copy it "
                              "again.")
    kind = foreign_file_kind(head)
    if kind is not None:
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (looks like {kind}; it starts with "
            f"{head[:32]!r}). A checkpoint is what torch.save wrote: a zip or pickle file. "
            "Download or copy it again."
        )


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as a state dict; the message names the file."""


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "reading PyTorch checkpoints needs torch: pip install -e '.[convert]'"
        ) from e
    return torch


def _unsafe_reason(message: str) -> str:
    """The line of torch's weights-only error that names what the pickle asked for."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for line in lines:
        if "GLOBAL" in line or "WeightsUnpickler error" in line:
            return line
    return lines[-1] if lines else "unknown reason"


def _load(path: Path) -> Any:
    torch = _import_torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise  # names the file already, and is not corruption
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: the file is not plain tensor data. Its pickle refers to "
            f"code or classes ({_unsafe_reason(str(e))}). Checkpoints are read with "
            "torch.load(weights_only=True) and nothing in them is executed; if the file is a "
            "whole pickled model, save `model.state_dict()` instead. (A truncated legacy-format "
            "file can also look like this.)"
        ) from e
    except _CORRUPT_FILE_ERRORS as e:
        raise CheckpointError(
            f"{path}: cannot read this PyTorch checkpoint: the file is truncated or corrupt "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unexpected end'}). "
            "Download or copy it again."
        ) from e


def unwrap_state_dict(obj: Any, *, source: str) -> dict[str, Any]:
    """Finds the state dict inside common checkpoint wrappers and strips ``module.`` prefixes.

    Args:
      obj: what ``torch.load`` returned: a state dict, or a dict holding one under one of
        `WRAPPER_KEYS` (e.g. ``{'state_dict': ..., 'epoch': 90}``), possibly nested.
      source: the file, for error messages.

    Returns:
      key -> value, with a ``module.`` prefix removed from every key that has one.

    Raises:
      CheckpointError: if ``obj`` is not a dict, or stripping prefixes makes two keys equal.
    """
    while isinstance(obj, Mapping):
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            break
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source}: expected a state dict (a dict of tensors), got {type(obj).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = str(key).removeprefix(PARALLEL_PREFIX)
        if name in out:
            raise CheckpointError(f"{source}: keys {name!r} and {key!r} collide once "
                                  f"{PARALLEL_PREFIX!r} is stripped")
        out[name] = value
    return out


def _to_numpy(tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.element_size() < 4:
        tensor = tensor.float()  # bfloat16 has no NumPy dtype; half would only be cast later
    return tensor.numpy()


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch checkpoint (zip or legacy format) into NumPy arrays, executing nothing.

    Args:
      path: a ``.pth`` / ``.pt`` file: a bare state dict or a common wrapper around one.

    Returns:
      source key (``module.`` stripped) -> NumPy array.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ImportError: if torch is not installed (the message says how to install it).
      CheckpointError: naming the file, if it is not a checkpoint at all (what it looks like
        instead: HTML, text, ...), truncated, corrupt, holds code, or holds entries that are
        not tensors (each named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    sniff_checkpoint(path)  # before torch: an HTML page is not "pickled code"
    torch = _import_torch()
    state = unwrap_state_dict(_load(path), source=str(path))
    bad = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: entries that are not tensors: {', '.join(bad[:10])}"
            f"{f' and {len(bad) - 10} more' if len(bad) > 10 else ''} (expected a state dict, "
            f"bare or under one of the keys {', '.join(WRAPPER_KEYS)})"
        )
    return {k: _to_numpy(v) for k, v in state.items()}


def _converter(model: str) -> Callable[..., dict]:
    """The state-dict converter of ``model``, imported only when needed."""
    if model in weights.MODEL_ARCHITECTURES:
        from weights_convert import alexnet, resnet50, vgg16, vgg19

        modules = {"vgg16": vgg16, "vgg19": vgg19, "alexnet": alexnet, "resnet50": resnet50}
        return modules[weights.MODEL_ARCHITECTURES[model]].convert_state_dict
    if model == "transalnet_dense":
        from weights_convert import transalnet

        return transalnet.convert_state_dict
    raise ValueError(f"unknown model {model!r}; expected one of {', '.join(weights.MODELS)}")


def output_path(model: str, out: str | os.PathLike | None, *, force: bool) -> Path:
    """The output file: ``out``, or the cache path of ``model``; checked not to exist.

    Raises:
      FileExistsError: if it exists and ``force`` is not set.
    """
    out = Path(out).expanduser() if out is not None else weights.weights_path(model)
    if out.exists() and not force:
        raise FileExistsError(f"{out}: already exists; pass --force to overwrite it")
    return out


def convert_checkpoint(
    model: str,
    src: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    force: bool = False,
) -> tuple[Path, dict[str, str], int]:
    """Converts one PyTorch checkpoint into an ais_jax weights file (what the CLI runs).

    Args:
      model: one of `ais_jax.weights.MODELS` (an alias such as ``vgg16_ecoset`` is recorded,
        and written by default, under the name it stands for: ``ecoset``).
      src: the PyTorch checkpoint.
      out: the output ``.safetensors`` file; default `ais_jax.weights.weights_path` (the cache
        the experiments read).
      force: overwrite an existing output file.

    Returns:
      ``(output path, metadata written, number of tensors)``.

    Raises:
      FileExistsError: if ``out`` exists and ``force`` is not set.
      FileNotFoundError, ImportError, CheckpointError, weights_convert.keymap.ConversionError:
        as `read_state_dict` and the model's converter; nothing is written then.
    """
    convert = _converter(model)
    src = Path(src)
    out = output_path(model, out, force=force)
    params = convert(read_state_dict(src), source=str(src))
    metadata = {"model": weights.canonical_model(model), "source_file": src.name,
                "source_sha256": sha256_file(src)}
    if model in weights.MODEL_ARCHITECTURES:
        arch = registry.architecture(weights.MODEL_ARCHITECTURES[model])
        classifier = params["head"][registry.CLASSIFIER_LAYER[arch.head_family]]
        metadata.update(num_classes=str(classifier["bias"].shape[0]), architecture=arch.name)
    written = weights.save_params(out, params, metadata)
    return out, written, len(jax.tree_util.tree_leaves(params))
