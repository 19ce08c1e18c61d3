"""Per-image AIS heatmaps (SPEC §5): clipped, normalised AIS weights over the ablated maps.

``w_ik = max(AIS_ik, 0) / sum_k max(AIS_ik, 0)``, ``heat_i = sum_k w_ik A_i[:, :, k]`` at the
activation grid of the model's ablated layer (VGG-16's conv5_3: 14x14 for a square 224 input,
e.g. 14x18 otherwise; AlexNet 13x13, ResNet-50 7x7; any M maps), then upsampled to the
image's original (H, W) with OpenCV's bilinear (`ais_jax.data.resize.resize_bilinear`).
An image with no positive AIS has no heatmap: it gets a zero map and ``defined = False``
(never a division by zero). Maps are raw floats; display scaling is `minmax_scale`.

Aim 3 entry points: `heatmaps_for_item` (compute through the shared study pipeline),
`read_heatmaps` (read an Aim 2 output folder), `upsample` (grid -> original size).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax import preflight
from ais_jax.data.images import open_rgb
from ais_jax.data.resize import resize_bilinear
from ais_jax.engine.ais import per_image_ais

GRID_FILE = "heatmaps_grid.npy"
AIS_FILE = "per_image_ais.npy"
IDS_FILE = "image_ids.json"


def heatmap_weights(ais: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Clipped, normalised weights of the maps per image.

    Args:
      ais: ``[n, M]`` per-image AIS.

    Returns:
      (weights ``[n, M]`` float32, each row summing to 1 or all zero; defined ``[n]`` bool,
      False where no AIS of the image is positive).
    """
    pos = jnp.maximum(jnp.asarray(ais, jnp.float32), 0.0)  # [n, M]
    total = pos.sum(axis=-1, keepdims=True)  # [n, 1]
    defined = total[:, 0] > 0
    # Divide only where the sum is positive; elsewhere the weights stay exactly 0.
    weights = jnp.where(total > 0, pos / jnp.where(total > 0, total, 1.0), 0.0)
    return weights, defined


@jax.jit
def grid_heatmaps(ais: jax.Array, acts: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Heatmaps of all images at the activation grid, one contraction.

    Args:
      ais: ``[n, M]`` per-image AIS.
      acts: ``[n, h, w, M]`` ablated-layer activations of the same images.

    Returns:
      (heat ``[n, h, w]`` float32, zero where undefined; defined ``[n]`` bool).
    """
    if ais.shape[0] != acts.shape[0] or ais.shape[1] != acts.shape[-1]:
        raise ValueError(f"grid_heatmaps: ais {ais.shape} does not match acts {acts.shape} "
                         "([n, M] and [n, h, w, M])")
    weights, defined = heatmap_weights(ais)
    heat = jnp.einsum("nk,nhwk->nhw", weights, jnp.asarray(acts, jnp.float32),
                      precision=jax.lax.Precision.HIGHEST)
    return heat, defined


def upsample(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes heatmaps from the grid to an original image size, as OpenCV's bilinear.

    Args:
      heat: ``[h, w]`` or ``[n, h, w]`` grid heatmaps.
      size: ``(H, W)`` of the original image(s).

    Returns:
      ``[H, W]`` or ``[n, H, W]`` float32.
    """
    heat = np.asarray(heat, np.float32)
    if heat.ndim == 2:
        return np.asarray(resize_bilinear(heat, size))
    if heat.ndim != 3:
        raise ValueError(f"upsample: expected [h, w] or [n, h, w] heatmaps, got {heat.shape}")
    # resize_bilinear resizes the two leading axes: put the images last.
    return np.moveaxis(np.asarray(resize_bilinear(np.moveaxis(heat, 0, -1), size)), -1, 0)


def upsample_each(grid: np.ndarray, sizes: Sequence[tuple[int, int]], *,
                  chunk: int = 16) -> list[np.ndarray]:
    """Every grid heatmap at its own image's size (images of one size resized together).

    Args:
      grid: ``[n, h, w]`` grid heatmaps.
      sizes: ``n`` original ``(H, W)``.
      chunk: images per resize call (bounds memory at ``chunk * H * W`` floats).

    Returns:
      ``n`` float32 arrays ``[H_i, W_i]``.
    """
    if len(sizes) != grid.shape[0]:
        raise ValueError(f"upsample_each: {grid.shape[0]} heatmaps but {len(sizes)} sizes")
    out: list[np.ndarray | None] = [None] * len(sizes)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):
        by_size.setdefault((int(s[0]), int(s[1])), []).append(i)
    for size, idx in by_size.items():
        for start in range(0, len(idx), chunk):
            part = idx[start:start + chunk]
            for i, up in zip(part, upsample(grid[part], size), strict=True):
                out[i] = up
    return out  # type: ignore[return-value]


def minmax_scale(heat: np.ndarray) -> np.ndarray:
    """Display scaling as the paper's figures: per map, (x - min) / (max - min) in [0, 1].

    A constant map (e.g. an undefined, all-zero heatmap) becomes all zeros.

    Args:
      heat: ``[H, W]`` or ``[n, H, W]``.

    Returns:
      The same shape, float32 in [0, 1].
    """
    heat = np.asarray(heat, np.float32)
    axes = (-2, -1)
    lo = heat.min(axis=axes, keepdims=True)
    span = heat.max(axis=axes, keepdims=True) - lo
    return np.where(span > 0, (heat - lo) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def image_sizes(paths: Sequence[str | Path]) -> list[tuple[int, int]]:
    """The stored ``(H, W)`` of every image (no EXIF rotation, as the trunk's input)."""
    sizes = []
    for p in paths:
        img = open_rgb(p)
        sizes.append((img.height, img.width))
    return sizes


@dataclasses.dataclass(frozen=True)
class Heatmaps:
    """Per-image AIS and heatmaps of one (model, dataset), in dataset order.

    Attributes:
      image_ids: ``n`` image file names.
      sizes: ``n`` original ``(H, W)``.
      ais: ``[n, M]`` per-image AIS.
      grid: ``[n, h, w]`` raw heatmaps at the activation grid (zeros where undefined).
      defined: ``[n]`` bool, False for images without a positive AIS.
    """

    image_ids: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    ais: np.ndarray
    grid: np.ndarray
    defined: np.ndarray

    @property
    def undefined_ids(self) -> list[str]:
        """Ids of the images whose heatmap is undefined (no positive AIS)."""
        return [i for i, ok in zip(self.image_ids, self.defined, strict=True) if not ok]

    def original(self, index: int) -> np.ndarray:
        """Heatmap ``index`` upsampled to its image's ``(H, W)`` (float32)."""
        return upsample(self.grid[index], self.sizes[index])


def compute_heatmaps(ais: np.ndarray, acts: np.ndarray, image_ids: Sequence[str],
                     sizes: Sequence[tuple[int, int]]) -> Heatmaps:
    """`Heatmaps` from per-image AIS ``[n, M]`` and activations ``[n, h, w, M]``."""
    grid, defined = grid_heatmaps(jnp.asarray(ais), jnp.asarray(acts))
    return Heatmaps(tuple(image_ids), tuple((int(h), int(w)) for h, w in sizes),
                    np.asarray(ais, np.float32), np.asarray(grid), np.asarray(defined))


def heatmaps_for_item(item) -> Heatmaps:
    """Per-image AIS and grid heatmaps of one `ais_jax.study.item.StudyItem`.

    Uses (and fills) the shared cache of trunk activations and ablation similarities, so it
    recomputes neither after Aim 1 or Aim 2 ran on the same data and checkpoint.
    """
    ais = np.asarray(per_image_ais(item.similarities.value, item.human))  # [n, M]
    return compute_heatmaps(ais, item.activations.value, item.image_ids,
                            image_sizes(item.dataset.image_paths))


def read_heatmaps(folder: str | Path) -> Heatmaps:
    """Reads the heatmaps an Aim 2 run wrote for one (model, dataset).

    Args:
      folder: ``<aim2 out>/<model>/<dataset>`` (holding ``per_image_ais.npy``,
        ``heatmaps_grid.npy`` and ``image_ids.json``).

    Raises:
      FileNotFoundError: a file is missing (naming it).
      ValueError: the files disagree on the number of images, or one cannot be parsed (named,
        with what it looks like).
    """
    folder = Path(folder)
    for name in (AIS_FILE, GRID_FILE, IDS_FILE):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} does not exist: not an Aim 2 output "
                                    "folder (<out>/<model>/<dataset>) or the run is unfinished")
    manifest = preflight.read_json(folder / IDS_FILE, "an Aim 2 heatmap manifest")
    ais, grid = (preflight.read_npy(folder / name, "an Aim 2 array (.npy)")
                 for name in (AIS_FILE, GRID_FILE))
    ids = tuple(manifest["image_ids"])
    if not len(ids) == ais.shape[0] == grid.shape[0]:
        raise ValueError(f"{folder}: {len(ids)} image ids, {ais.shape[0]} AIS rows and "
                         f"{grid.shape[0]} heatmaps")
    undefined = set(manifest["undefined"])
    return Heatmaps(ids, tuple(tuple(s) for s in manifest["sizes"]), ais, grid,
                    np.array([i not in undefined for i in ids]))
