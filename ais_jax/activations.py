"""Trunk activations and ablation similarities of a dataset, computed once and cached on disk.

Both depend only on the checkpoint, the image files, the preprocessing and the input size,
never on the human matrix, so a cache entry is keyed by a hash of exactly those:

    cache_dir()/activations/<key>.npy     acts  [n, h, w, 512]
    cache_dir()/ablations/<key>.npz       full [n, n], global_ [512, n, n], per_image [n, 512, n]

Changing any key part (another checkpoint, an edited or reordered image, a new preprocessing
version, another size) gives a new key, so stale entries are never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ais_jax import storage
from ais_jax.ablation import AblationSimilarities, ablation_similarities
from ais_jax.data.images import PREPROCESS_VERSION, load_batch
from ais_jax.models.vgg16 import VGG16Trunk, pool_blocks

log = logging.getLogger(__name__)

# Bump when the cached arrays' meaning changes (e.g. a fix in the ablation kernels).
ABLATION_CACHE_VERSION = 2  # 2: changes of the similarities, careful sums (#8)


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


def cache_key(**parts: Any) -> str:
    """A short stable hash of JSON-serialisable key parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def activation_key(checkpoint_sha256: str, image_paths: Sequence[str | Path],
                   image_size: int) -> str:
    """Cache key of a dataset's trunk activations (and, derived from it, its ablations)."""
    return cache_key(checkpoint=checkpoint_sha256, images=images_digest(image_paths),
                     preprocess=PREPROCESS_VERSION, size=int(image_size))


@jax.jit
def _trunk(trunk_params: dict, images: jax.Array) -> jax.Array:
    return VGG16Trunk().apply({"params": trunk_params}, images)


blocks_from_acts = jax.jit(pool_blocks)


def trunk_activations(trunk_params: dict, image_paths: Sequence[str | Path], *,
                      image_size: int = 224, batch_size: int = 8,
                      desc: str = "trunk") -> np.ndarray:
    """Runs the VGG-16 trunk over image files in fixed-size batches.

    The last batch is padded to ``batch_size`` so the jitted trunk compiles once per image size.

    Args:
      trunk_params: the ``'trunk'`` subtree of the VGG-16 parameters.
      image_paths: ``n`` image files, in dataset order.
      image_size: shorter side after resizing (224 in the paper).
      batch_size: images per trunk call.
      desc: progress bar label.

    Returns:
      acts ``[n, h, w, 512]`` float32, post-ReLU conv5_3.
    """
    paths = list(image_paths)
    out = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch"):
        batch = np.asarray(load_batch(paths[start:start + batch_size], size=image_size),
                           np.float32)  # [b, H, W, 3]
        real = batch.shape[0]
        if real < batch_size:
            pad = np.zeros((batch_size - real, *batch.shape[1:]), np.float32)
            batch = np.concatenate([batch, pad])
        out.append(np.asarray(_trunk(trunk_params, jnp.asarray(batch)))[:real])
    return np.concatenate(out)


def cached_activations(trunk_params: dict, checkpoint_sha256: str,
                       image_paths: Sequence[str | Path], *, image_size: int = 224,
                       batch_size: int = 8, desc: str = "trunk") -> Cached:
    """`trunk_activations`, read from the cache when this exact input was seen before.

    Returns:
      `Cached` with value acts ``[n, h, w, 512]``; its key is ``path.stem``.
    """
    key = activation_key(checkpoint_sha256, image_paths, image_size)
    path = storage.cache_dir() / "activations" / f"{key}.npy"
    if path.exists():
        log.info("activations: cache hit %s", path)
        return Cached(np.load(path), path, True)
    acts = trunk_activations(trunk_params, image_paths, image_size=image_size,
                             batch_size=batch_size, desc=desc)
    storage.write_npy(path, acts)
    log.info("activations: computed and cached %s", path)
    return Cached(acts, path, False)


def cached_similarities(head_params: dict, blocks: np.ndarray, activations_key: str, *,
                        chunk_maps: int | None = None) -> Cached:
    """Ablation similarity matrices of a dataset, cached beside its activations.

    Args:
      head_params: the ``'head'`` subtree of the VGG-16 parameters.
      blocks: ``[n, 512, 49]`` pooled fc6 inputs of the dataset's activations.
      activations_key: the activations' cache key (checkpoint, images, preprocessing, size).
      chunk_maps: maps per ablation step (memory/speed trade-off; None = the default).

    Returns:
      `Cached` with value `ais_jax.ablation.AblationSimilarities` (numpy arrays).
    """
    key = cache_key(activations=activations_key, version=ABLATION_CACHE_VERSION)
    path = storage.cache_dir() / "ablations" / f"{key}.npz"
    fields = AblationSimilarities._fields
    if path.exists():
        log.info("ablation similarities: cache hit %s", path)
        with np.load(path) as z:
            return Cached(AblationSimilarities(**{f: z[f] for f in fields}), path, True)
    sims = ablation_similarities(head_params, jnp.asarray(blocks), chunk_maps=chunk_maps)
    arrays = {f: np.asarray(getattr(sims, f)) for f in fields}
    with storage.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    log.info("ablation similarities: computed and cached %s", path)
    return Cached(AblationSimilarities(**arrays), path, False)
