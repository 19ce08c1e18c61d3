"""Heatmap overlays: a colour-mapped heatmap blended onto its image, RGB in and out."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import PIL.Image

from ais_jax import storage


def colorize(heat: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Maps a heatmap in [0, 1] to RGB through a matplotlib colormap.

    Args:
      heat: ``[H, W]`` values in [0, 1] (scale first, e.g. with
        `ais_jax.explain.heatmaps.minmax_scale`).
      colormap: a matplotlib colormap name.

    Returns:
      ``[H, W, 3]`` float32 RGB in [0, 1].

    Raises:
      ValueError: unknown colormap, or values outside [0, 1] / not finite.
    """
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"colorize: expected an [H, W] heatmap, got shape {heat.shape}")
    if not np.isfinite(heat).all() or heat.min(initial=0) < 0 or heat.max(initial=0) > 1:
        raise ValueError("colorize: heatmap values must be finite and in [0, 1] "
                         "(apply a display scaling such as minmax_scale first)")
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError as e:
        raise ValueError(f"unknown colormap {colormap!r}") from e
    return np.asarray(cmap(heat)[..., :3], np.float32)  # drop alpha; matplotlib gives RGBA


def overlay(image: np.ndarray, heat: np.ndarray, *, colormap: str = "jet",
            image_weight: float = 0.5) -> np.ndarray:
    """Blends a colour-mapped heatmap onto an RGB image.

    ``out = image_weight * image + (1 - image_weight) * colormap(heat)``, rounded to 8 bits.

    Args:
      image: ``[H, W, 3]`` uint8 RGB.
      heat: ``[H, W]`` in [0, 1], the image's (H, W).
      colormap: matplotlib colormap name (default 'jet', as the paper's figures).
      image_weight: weight of the image in [0, 1].

    Returns:
      ``[H, W, 3]`` uint8 RGB.

    Raises:
      ValueError: shapes that differ or are not RGB, a weight outside [0, 1], bad heat values.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay: image must be uint8 RGB [H, W, 3], got {image.dtype} "
                         f"{image.shape}")
    if np.shape(heat) != image.shape[:2]:
        raise ValueError(f"overlay: heatmap shape {np.shape(heat)} is not the image's (H, W) "
                         f"{image.shape[:2]}")
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"overlay: image_weight must be in [0, 1], got {image_weight}")
    colour = colorize(heat, colormap) * 255.0  # [H, W, 3]
    mixed = image_weight * image.astype(np.float32) + (1.0 - image_weight) * colour
    return np.clip(np.floor(mixed + 0.5), 0, 255).astype(np.uint8)


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Writes an ``[H, W, 3]`` uint8 RGB array as a PNG, atomically."""
    with storage.atomic_path(path) as tmp:
        PIL.Image.fromarray(np.asarray(rgb, np.uint8), "RGB").save(tmp, format="PNG")
