"""Saliency maps for the AIS heatmaps of a dataset, matched by image id and checked up front.

The maps are those `experiments.saliency` writes (TranSalNet-Dense) or the user's own, read by
`ais_jax.explain.saliency.load_saliency_maps` (``<folder>/<image stem>.npy`` or greyscale ``.png``,
shaped like the image). `match_saliency` checks every image before returning, so a run stops
before writing anything, with one error that lists every missing or mis-sized map and gives the
command that makes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ais_jax.explain.saliency import FORMATS_HELP, load_saliency_maps, other_formats

_SHOWN = 10


def saliency_command(data_dir: str | os.PathLike | None, folder: str | os.PathLike) -> str:
    """The command that writes TranSalNet-Dense maps for ``data_dir`` into ``folder``."""
    return (f"python -m experiments.saliency --data_dir={data_dir or '<image folder>'} "
            f"--out={folder}")


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def match_saliency(
    folder: str | os.PathLike,
    image_ids: Sequence[str],
    shapes: Sequence[tuple[int, int]],
    *,
    data_dir: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """One saliency map per image, in the heatmaps' order, each of its image's (H, W).

    Args:
      folder: the saliency-map folder.
      image_ids: the heatmaps' image ids (file stems or file names, as
        `ais_jax.explain.saliency.load_saliency_maps` takes them).
      shapes: each image's ``(H, W)``.
      data_dir: the image folder, only to print the command that makes the maps.

    Returns:
      ``[H_i, W_i]`` maps in their stored precision (float64 stays float64), in ``image_ids``
      order.

    Raises:
      FileNotFoundError: the folder or some maps are missing (every missing id is named).
      ValueError: maps of the wrong shape (e.g. height and width swapped) or unreadable ones,
        each named; or ids sharing a stem.
      Both messages end with the command that makes the maps.
    """
    folder = Path(folder).expanduser()
    command = saliency_command(data_dir, folder)
    if len(image_ids) != len(shapes):
        raise ValueError(f"{len(image_ids)} image ids but {len(shapes)} shapes")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such saliency-map folder; make the maps with: "
                                f"{command}")
    try:
        return load_saliency_maps(folder, image_ids, shapes)
    except (FileNotFoundError, ValueError) as first:
        # Check image by image, so that one error names every bad map, not just the first.
        missing, bad = [], []
        for image_id, shape in zip(image_ids, shapes, strict=True):
            try:
                load_saliency_maps(folder, [image_id], [shape])
            except FileNotFoundError:
                others = other_formats(folder, Path(str(image_id)).stem)
                missing.append(str(image_id) + (f" (found {', '.join(others)}: a format not "
                                                "read)" if others else ""))
            except ValueError as e:
                bad.append(f"{image_id}: {e}")
        if not missing and not bad:  # a problem of the whole list (two ids share a stem)
            raise ValueError(f"{first}") from first
        parts = []
        if missing:
            parts.append(f"no saliency map for {len(missing)} of {len(image_ids)} image(s): "
                         f"{_listing(missing)} ({FORMATS_HELP})")
        if bad:
            parts.append(f"{len(bad)} unusable map(s): {_listing(bad)}")
        message = f"{folder}: " + "; ".join(parts) + f". Make the maps with: {command}"
        if bad:
            raise ValueError(message) from first
        raise FileNotFoundError(message) from first
