"""Image files -> normalised VGG-16 inputs, as the released PyTorch code prepares them (SPEC §1).

The pipeline is ``open_rgb`` (any PIL-readable file -> 8-bit RGB) -> ``resize_shorter`` (shorter
side to 224, PIL bilinear, antialiased when shrinking, aspect kept) -> ``preprocess`` (scale to
[0, 1], ImageNet mean/std) -> ``[H, W, 3]`` float32; ``load_batch`` does all three for a list of
files and stacks them into ``[n, H, W, 3]``.

Choices made when a file is not plain 8-bit RGB (all follow PIL's ``convert('RGB')``, which the
released code calls, except where PIL would lose the image):

* Alpha (RGBA, LA, PA, transparent palettes) is dropped, not composited: the colour stored under
  a transparent pixel is used as it is, as ``convert('RGB')`` does.
* EXIF orientation is **not** applied: pixels are used in stored order, as the released code
  (PIL without ``exif_transpose``) does. A photo whose camera marked it "rotated" is seen by the
  model the way it is stored, and heatmaps are in that orientation too.
* CMYK uses PIL's plain formula (no ICC colour management), as ``convert('RGB')`` does.
* 16-bit greyscale (PIL modes ``I;16*``; ``I`` with values in [0, 65535]) is scaled to 8 bits by
  keeping the high byte (``v >> 8``), the rule PIL itself applies when it decodes 16-bit RGB
  PNGs, so a grey file and the same file saved as 16-bit RGB give the same input. PIL's own
  ``convert`` would clip such images to 255 (nearly all white).
* 32-bit float (``F``) is read on the 0-255 scale and converted as PIL does (truncated); values
  outside [0, 255] or non-finite raise ``ValueError`` rather than being clipped silently.
* Multi-frame files (GIF, TIFF) use their first frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image
from tqdm import tqdm

# Bump whenever the pixels this module produces change; part of activation cache keys.
PREPROCESS_VERSION = 1

INPUT_SIZE = 224  # shorter side after resizing

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # [3], RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)  # [3], RGB
IMAGENET_MEAN.setflags(write=False)
IMAGENET_STD.setflags(write=False)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")

# A progress bar is worth its line only for batches that take a while to decode.
_PROGRESS_MIN_IMAGES = 32

# What PIL raises for unreadable, corrupt or truncated files (UnidentifiedImageError and
# "image file is truncated" are OSErrors; some decoders raise SyntaxError, ValueError or
# EOFError; a decompression bomb raises its own error).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, PIL.Image.DecompressionBombError)


def _to_rgb(img: PIL.Image.Image, path: Path) -> PIL.Image.Image:
    """Converts a decoded image of any mode to 8-bit RGB (see the module docstring)."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(img)  # [h, w] uint16 (I;16*) or int32 (I)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"{path}: 32-bit integer image with values in [{values.min()}, {values.max()}];"
                " only 16-bit ranges [0, 65535] are understood. Save it as 8- or 16-bit."
            )
        grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return PIL.Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "F":
        values = np.asarray(img)  # [h, w] float32
        if values.size and not (
            np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 255.0
        ):
            raise ValueError(
                f"{path}: floating-point image with values outside [0, 255] (or not finite);"
                " it is read on the 8-bit scale. Rescale it and save it as an 8-bit image."
            )
        return img.convert("RGB")
    if mode in ("P", "PA"):
        # Through RGBA: the same colours, and PIL does not warn about byte-string transparency.
        return img.convert("RGBA").convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise ValueError(f"{path}: cannot convert PIL image mode {mode!r} to RGB ({e})") from e


def open_rgb(path: str | os.PathLike) -> PIL.Image.Image:
    """Reads any image PIL can open as 8-bit RGB, with the choices in the module docstring.

    Args:
      path: an image file (JPEG, PNG, BMP, TIFF, WebP, GIF, ...).

    Returns:
      A fully loaded PIL image of mode ``'RGB'``, size as stored (no EXIF rotation).

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: ``path`` is not a file, or is unreadable, corrupt or truncated, or holds
        values outside the ranges above; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: image file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    try:
        with PIL.Image.open(path) as img:
            img.load()  # decode now: truncation and corrupt data surface here
            return _to_rgb(img, path)
    except _DECODE_ERRORS as e:
        if isinstance(e, ValueError) and str(e).startswith(f"{path}:"):
            raise  # our own message already names the file
        raise ValueError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def resized_shape(height: int, width: int, size: int = INPUT_SIZE) -> tuple[int, int]:
    """The (H, W) after scaling the shorter side to ``size``, as torchvision ``Resize(size)``.

    Returns:
      ``(new_h, new_w)``; the long side is ``int(size * long / short)`` (rounded down).
    """
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


def resize_shorter(img: PIL.Image.Image, size: int = INPUT_SIZE) -> PIL.Image.Image:
    """Scales an RGB image so its shorter side is ``size``, keeping the aspect ratio (SPEC §1).

    PIL bilinear on the 8-bit image: antialiased (the filter widens with the scale) when
    shrinking, rounded back to 8 bits; exactly what torchvision ``Resize(size)`` does to a PIL
    image.

    Args:
      img: a PIL image of mode ``'RGB'`` (from `open_rgb`).
      size: the target length of the shorter side.

    Returns:
      The resized ``'RGB'`` image, ``resized_shape(h, w, size)`` in (H, W).
    """
    if img.mode != "RGB":
        raise ValueError(
            f"resize_shorter expects an RGB image (use open_rgb), got mode {img.mode!r}"
        )
    if size < 1:
        raise ValueError(f"resize_shorter: size must be positive, got {size}")
    new_h, new_w = resized_shape(img.height, img.width, size)
    return img.resize((new_w, new_h), PIL.Image.Resampling.BILINEAR)


def preprocess(img: PIL.Image.Image | np.ndarray) -> np.ndarray:
    """Scales 8-bit RGB to [0, 1] and normalises with the ImageNet mean and std.

    The same float32 operations as torchvision ``ToTensor`` + ``Normalize``, in (H, W, C) order.

    Args:
      img: an RGB PIL image or a uint8 array ``[H, W, 3]``.

    Returns:
      ``[H, W, 3]`` float32.
    """
    if isinstance(img, PIL.Image.Image) and img.mode != "RGB":
        raise ValueError(f"preprocess expects an RGB image (use open_rgb), got mode {img.mode!r}")
    pixels = np.asarray(img)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ValueError(
            f"preprocess expects uint8 pixels [H, W, 3], got {pixels.dtype} {pixels.shape}"
        )
    x = pixels.astype(np.float32) / np.float32(255)
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def load_batch(
    paths: Sequence[str | os.PathLike],
    size: int = INPUT_SIZE,
    *,
    progress: bool | None = None,
) -> np.ndarray:
    """Reads, resizes and normalises image files into one batch.

    Args:
      paths: image files, in the order wanted in the batch.
      size: shorter side after resizing.
      progress: show a tqdm bar; by default only for batches of 32 images or more.

    Returns:
      ``[n, H, W, 3]`` float32, normalised.

    Raises:
      ValueError: no paths; an unreadable file (named); or images whose resized shapes differ,
        naming the first file that differs from the first file.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("load_batch: no image paths given")
    show = len(paths) >= _PROGRESS_MIN_IMAGES if progress is None else progress
    batch = []
    for path in tqdm(paths, desc="images", unit="img", disable=not show):
        x = preprocess(resize_shorter(open_rgb(path), size))
        if batch and x.shape != batch[0].shape:
            raise ValueError(
                f"{path}: resized to {x.shape[0]}x{x.shape[1]} (H x W), but {paths[0]} was"
                f" resized to {batch[0].shape[0]}x{batch[0].shape[1]}. Only the shorter side"
                f" is scaled to {size}, so images of different aspect ratios cannot share a"
                " batch: crop or resize them to one common aspect ratio (e.g. centre-crop to"
                " square) first, or load them in separate batches."
            )
        batch.append(x)
    return np.stack(batch)
