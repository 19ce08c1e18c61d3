"""Trunk activations and ablation similarities of a dataset, computed once and cached on disk.

Both depend only on the weights, the image files, the preprocessing and the input size, never
on the human matrix, so a cache entry is keyed by a hash of exactly those:

    cache_dir()/activations/<key>.npz     acts [n, h, w, M]
    cache_dir()/ablations/<key>.npz       full [n, n], global_delta [M, n, n],
                                          per_image_delta [n, M, n]

The trunk and the pooling come from the model's registered architecture
(`ais_jax.models.registry`): ``h x w`` is that model's map grid and M its number of maps.

The weights are named by the digest of the tensors actually used (``tensors_sha256`` in the
metadata of the converted file, verified when it was read), not by the checkpoint they were
converted from: re-converting, or a damaged file, can never reuse entries computed from other
numbers. Changing any key part (other tensors, an edited, renamed or reordered image, a new
preprocessing or cache format version, another size, another architecture) gives a new key, so
stale entries are never read. (VGG-16's keys carry no architecture part: they are the keys
written before other architectures existed, so its cache entries stay valid.)

Each entry also stores the sha256 of its own arrays. An entry that cannot be read (truncated,
corrupt) or does not match its digest is a cache miss: it is computed again and replaced.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ais_jax import storage
from ais_jax.data.images import PREPROCESS_VERSION, load_batch
from ais_jax.engine.ablation import AblationSimilarities, ablation_similarities
from ais_jax.models import registry
from ais_jax.models.registry import Architecture

log = logging.getLogger(__name__)

# Bump when the cached arrays' meaning or file layout changes (e.g. a fix in the ablation
# kernels). 2: keyed by the weights' tensor digest; entries carry their own sha256.
ACTIVATION_CACHE_VERSION = 2
# 3: the similarities are stored as changes from the full ones, with careful sums (#8).
ABLATION_CACHE_VERSION = 3

_DIGEST_FIELD = "sha256"  # the entry's own digest, stored beside its arrays
# What reading a damaged .npz raises (truncated zip, bad CRC, missing member, bad header).
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


# The architecture whose cache keys have no architecture part (the keys of before #19).
KEYLESS_ARCHITECTURE = "vgg16"


@dataclasses.dataclass(frozen=True)
class Cached:
    """A cached computation's value, where it lives and whether it was read from disk."""

    value: Any
    path: Path
    hit: bool


def images_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the ordered list of image file names and contents.

    Raises:
      FileNotFoundError: naming the first image that cannot be read.
    """
    h = hashlib.sha256()
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise FileNotFoundError(f"cannot read image {p}: {e}") from e
        h.update(Path(p).name.encode())
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def resolve(arch: str | Architecture) -> Architecture:
    """``arch`` itself, or the registered architecture of that name (ValueError lists them)."""
    return arch if isinstance(arch, Architecture) else registry.architecture(arch)


def activation_key(weights_digest: str, image_paths: Sequence[str | Path],
                   image_size: int, *, arch: str | Architecture = KEYLESS_ARCHITECTURE) -> str:
    """Cache key of a dataset's trunk activations (and, derived from it, its ablations).

    Args:
      weights_digest: ``metadata['tensors_sha256']`` of the weights (see the module docstring).
      image_paths: the images, in dataset order.
      image_size: shorter side after resizing.
      arch: the weights' architecture (or its registry name); part of the key for all but
        `KEYLESS_ARCHITECTURE`, whose keys are those of before #19.
    """
    if not isinstance(weights_digest, str) or not weights_digest:
        raise ValueError(f"activation_key: weights_digest must be a non-empty string (the "
                         f"weights' metadata['tensors_sha256']), got {weights_digest!r}")
    name = resolve(arch).name
    extra = {} if name == KEYLESS_ARCHITECTURE else {"architecture": name}
    return storage.cache_key(weights=weights_digest, images=images_digest(image_paths),
                             preprocess=PREPROCESS_VERSION, size=int(image_size),
                             format=ACTIVATION_CACHE_VERSION, **extra)


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def write_entry(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes a cache entry (arrays + their sha256) atomically as one ``.npz``."""
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with storage.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, **{_DIGEST_FIELD: np.array(_arrays_digest(arrays))})


def read_entry(path: Path, fields: Sequence[str]) -> dict[str, np.ndarray] | None:
    """A cache entry's arrays, or None when it is absent, unreadable or fails its digest."""
    if not path.exists():
        return None
    try:  # the file is opened here so that it is closed even when np.load fails
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {f: z[f] for f in fields}
            recorded = str(z[_DIGEST_FIELD][()])
    except _READ_ERRORS as e:
        log.warning("cache entry %s is unreadable (%s: %s); computing it again", path,
                    type(e).__name__, e)
        return None
    if _arrays_digest(arrays) != recorded:
        log.warning("cache entry %s does not match its recorded digest; computing it again",
                    path)
        return None
    return arrays


@functools.lru_cache(maxsize=None)
def _jitted(arch: Architecture) -> tuple[Callable, Callable]:
    """The jitted trunk and pool of one architecture (compiled once per input shape)."""
    return jax.jit(arch.trunk_apply), jax.jit(arch.pool)


def blocks_from_acts(acts: jax.Array | np.ndarray,
                     arch: str | Architecture = KEYLESS_ARCHITECTURE) -> jax.Array:
    """The head's per-map inputs ``blocks [n, M, B]`` of maps ``acts [n, h, w, M]``
    (``arch.pool``, jitted; VGG-16: the pooled fc6 inputs ``[n, 512, 49]``)."""
    return _jitted(resolve(arch))[1](acts)


def trunk_activations(trunk_params: dict, image_paths: Sequence[str | Path], *,
                      image_size: int = 224, batch_size: int = 8,
                      desc: str = "trunk",
                      arch: str | Architecture = KEYLESS_ARCHITECTURE) -> np.ndarray:
    """Runs a model's trunk over image files in fixed-size batches.

    The last batch is padded to ``batch_size`` so the jitted trunk compiles once per image size.

    Args:
      trunk_params: the ``'trunk'`` subtree of the model's parameters.
      image_paths: ``n`` image files, in dataset order.
      image_size: shorter side after resizing (224 in the paper).
      batch_size: images per trunk call.
      desc: progress bar label.
      arch: the model's architecture (or its registry name), whose ``trunk_apply`` runs.

    Returns:
      acts ``[n, h, w, M]`` float32, the ablated layer's post-ReLU maps (VGG-16: conv5_3).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    trunk = _jitted(resolve(arch))[0]
    paths = list(image_paths)
    out = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch"):
        batch = np.asarray(load_batch(paths[start:start + batch_size], size=image_size),
                           np.float32)  # [b, H, W, 3]
        real = batch.shape[0]
        if real < batch_size:
            pad = np.zeros((batch_size - real, *batch.shape[1:]), np.float32)
            batch = np.concatenate([batch, pad])
        out.append(np.asarray(trunk(trunk_params, jnp.asarray(batch)))[:real])
    return np.concatenate(out)


def _activations_path(key: str) -> Path:
    return storage.cache_dir() / "activations" / f"{key}.npz"


def store_activations(weights_digest: str, image_paths: Sequence[str | Path], acts: np.ndarray,
                      *, image_size: int = 224,
                      arch: str | Architecture = KEYLESS_ARCHITECTURE) -> Cached:
    """Puts activations computed elsewhere into the cache, under the key `cached_activations`
    would look up (e.g. a network built from its own activations, saved only afterwards).

    Args:
      weights_digest: ``tensors_sha256`` of the saved weights whose trunk computed ``acts``.
      image_paths, image_size, arch: as `cached_activations`.
      acts: ``[n, h, w, M]`` float32.
    """
    path = _activations_path(activation_key(weights_digest, image_paths, image_size,
                                            arch=arch))
    acts = np.asarray(acts, np.float32)
    write_entry(path, {"acts": acts})
    return Cached(acts, path, False)


def cached_activations(trunk_params: dict, weights_digest: str,
                       image_paths: Sequence[str | Path], *, image_size: int = 224,
                       batch_size: int = 8, desc: str = "trunk",
                       arch: str | Architecture = KEYLESS_ARCHITECTURE) -> Cached:
    """`trunk_activations`, read from the cache when this exact input was seen before.

    Args:
      trunk_params: the ``'trunk'`` subtree of the model's parameters.
      weights_digest: the digest of the weights ``trunk_params`` come from: pass
        ``metadata['tensors_sha256']`` of the converted file (for weights made in memory,
        any string that changes whenever their values do).
      image_paths, image_size, batch_size, desc, arch: as `trunk_activations` (``arch`` is
        part of the key, see `activation_key`).

    Returns:
      `Cached` with value acts ``[n, h, w, M]``; its key is ``path.stem``.

    Raises:
      ais_jax.storage.WriteError: the cache cannot be written (named, with the OS reason).
    """
    path = _activations_path(activation_key(weights_digest, image_paths, image_size,
                                            arch=arch))
    entry = read_entry(path, ("acts",))
    if entry is not None:
        log.info("activations: cache hit %s", path)
        return Cached(entry["acts"], path, True)
    acts = trunk_activations(trunk_params, image_paths, image_size=image_size,
                             batch_size=batch_size, desc=desc, arch=arch)
    cached = store_activations(weights_digest, image_paths, acts, image_size=image_size,
                               arch=arch)
    log.info("activations: computed and cached %s", path)
    return cached


def cached_similarities(head_params: dict, blocks: np.ndarray, activations_key: str, *,
                        chunk_maps: int | None = None) -> Cached:
    """Ablation similarity matrices of a dataset, cached beside its activations.

    Args:
      head_params: the ``'head'`` subtree of the same weights as the activations.
      blocks: ``[n, M, B]`` the head's per-map inputs of the dataset's activations
        (`blocks_from_acts`).
      activations_key: the activations' cache key, ``cached_activations(...).path.stem``
        (it covers the weights' tensor digest, so the head is keyed too).
      chunk_maps: maps per ablation step (memory/speed trade-off; None = the default).

    Returns:
      `Cached` with value `ais_jax.engine.ablation.AblationSimilarities` (numpy arrays).

    Raises:
      ais_jax.storage.WriteError: the cache cannot be written (named, with the OS reason).
    """
    key = storage.cache_key(activations=activations_key, version=ABLATION_CACHE_VERSION)
    path = storage.cache_dir() / "ablations" / f"{key}.npz"
    fields = AblationSimilarities._fields
    entry = read_entry(path, fields)
    if entry is not None:
        log.info("ablation similarities: cache hit %s", path)
        return Cached(AblationSimilarities(**entry), path, True)
    sims = ablation_similarities(head_params, jnp.asarray(blocks), chunk_maps=chunk_maps)
    arrays = {f: np.asarray(getattr(sims, f)) for f in fields}
    write_entry(path, arrays)
    log.info("ablation similarities: computed and cached %s", path)
    return Cached(AblationSimilarities(**arrays), path, False)
