"""Small JPEG copies of a run's pictures for report.html, kept under ``<out>/report_files/``."""

from __future__ import annotations

import os
from pathlib import Path

import PIL.Image

from ais_jax import storage

THUMB_PX = 256  # longest side of a gallery thumbnail
JPEG_QUALITY = 85


def thumbnail(source: Path, target: Path, size: int = THUMB_PX) -> tuple[int, int]:
    """Writes ``target``, an RGB JPEG of ``source`` no larger than ``size`` px a side.

    Returns:
      The thumbnail's ``(width, height)`` in pixels (for the page's ``<img>`` attributes).

    Skipped when ``target`` is at least as new as ``source`` (a resumed run rewrites only what
    changed). Never enlarges a small image.

    Raises:
      FileNotFoundError: ``source`` does not exist.
      ais_jax.storage.WriteError: ``target`` cannot be written.
    """
    if not source.is_file():
        raise FileNotFoundError(f"no such image: {source}")
    if target.is_file() and os.stat(target).st_mtime >= os.stat(source).st_mtime:
        with PIL.Image.open(target) as done:
            return done.size
    with PIL.Image.open(source) as img:
        small = img.convert("RGB")
        small.thumbnail((size, size), PIL.Image.Resampling.LANCZOS)
    with storage.atomic_path(target) as tmp:
        small.save(tmp, format="JPEG", quality=JPEG_QUALITY)
    return small.size
