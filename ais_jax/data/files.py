"""Files of a dataset folder: which entries are images, their ids, MATLAB variables.

The lowest module of `ais_jax.data` (it imports only `ais_jax.storage`): the image suffixes and
the image-ids file name live here so that every reader and writer of per-image files agrees.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import scipy.io

from ais_jax import storage

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Beside every per-image output: its image ids, one per line, in row order.
IMAGE_IDS_FILE = "image_ids.txt"


def scan_images(image_dir: str | os.PathLike) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The image files of a folder, sorted by file name, and what was left out, with why.

    Files with an ``IMAGE_SUFFIXES`` extension (any case) are images. Everything else in the
    folder is skipped and reported: hidden files (``.name``, such as macOS ``._x.jpg``
    metadata), other extensions, sub-folders, and links that lead nowhere.

    Returns:
      ``(images, skipped)``: image paths sorted by name, and one ``'name (reason)'`` per
      skipped entry, sorted by name.

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: image folder not found")
    images, skipped = [], []
    for p in sorted(image_dir.iterdir(), key=lambda p: p.name):
        if p.name.startswith("."):
            skipped.append(f"{p.name} (hidden)")
        elif p.is_symlink() and not p.exists():
            skipped.append(f"{p.name} (broken link)")
        elif p.is_dir():
            skipped.append(f"{p.name}/ (folder)")
        elif not p.is_file():
            skipped.append(f"{p.name} (not a regular file)")
        elif p.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(f"{p.name} (not an image extension)")
        else:
            images.append(p)
    return tuple(images), tuple(skipped)


def list_images(image_dir: str | os.PathLike) -> tuple[Path, ...]:
    """The image files of a folder, sorted by file name (see `scan_images`).

    What was skipped is logged as one warning naming every skipped entry, so that a file that
    was meant to be an image is noticed.

    Raises:
      FileNotFoundError: the folder does not exist.
      ValueError: it holds no image files.
    """
    paths, skipped = scan_images(image_dir)
    if skipped:
        log.warning("%s: %d entr%s skipped as not images: %s", image_dir, len(skipped),
                    "y" if len(skipped) == 1 else "ies", ", ".join(skipped))
    if not paths:
        found = f" (found only: {', '.join(skipped)})" if skipped else ""
        raise ValueError(f"{image_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}){found}")
    return paths


def write_image_ids(folder: str | os.PathLike, image_ids: Iterable[str]) -> Path:
    """Writes ``<folder>/image_ids.txt``: one image id per line, in row order (atomically).

    Every array a run writes per image goes in a folder with this file, so that row i of any
    of them can be told to be image i.
    """
    path = Path(folder) / IMAGE_IDS_FILE
    storage.write_text(path, "".join(f"{i}\n" for i in image_ids))
    return path


def loadmat(path: Path) -> dict[str, np.ndarray]:
    """The 2-D real numeric variables of a MATLAB file."""
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError as e:  # scipy's answer to v7.3 (HDF5) files
        raise ValueError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it in MATLAB with"
            " save(file, 'variable', '-v7'), or load it with h5py and write it with"
            " scipy.io.savemat or numpy.save"
        ) from e
    except (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as e:  # short files
        raise ValueError(f"{path}: cannot read MATLAB file ({e})") from e
    return {
        k: v
        for k, v in contents.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and v.ndim == 2
        and v.dtype.kind in "biuf"
    }
