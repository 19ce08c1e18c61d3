"""Small "real-looking" test images (smooth gradients, blobs, noise) in many PIL modes/formats."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import PIL.Image


def real_looking(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like RGB image: colour gradients, soft blobs and sensor-like noise.

    Returns:
      ``[height, width, 3]`` uint8.
    """
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    img = np.empty((height, width, 3))
    for c in range(3):
        a, b, d = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.25 * (a * yy + b * xx) + 0.1 * np.sin(2 * np.pi * (d * xx + yy))
    for _ in range(6):
        cy, cx = rng.uniform(0, 1, 2)
        r = rng.uniform(0.05, 0.3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-0.5, 0.5, 3)
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def write_png16(path: Path, values: np.ndarray) -> Path:
    """Writes a 16-bit PNG (grey ``[h, w]``, RGB ``[h, w, 3]`` or RGBA ``[h, w, 4]``) by hand.

    PIL cannot write 16-bit colour PNGs, so the chunks are assembled here (filter type 0).
    """
    values = np.asarray(values, np.uint16)
    if values.ndim == 2:
        values = values[..., None]
    h, w, c = values.shape
    colour_type = {1: 0, 3: 2, 4: 6}[c]
    rows = b"".join(b"\x00" + values[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


# name -> (file name, PIL mode written, (width, height), expected (H, W) after resize to 224)
CASES = {
    "rgb_jpeg_landscape": ("rgb.jpg", "RGB", (500, 375), (224, 298)),
    "rgba_png_portrait": ("rgba.png", "RGBA", (300, 400), (298, 224)),
    "grey_png": ("grey.png", "L", (333, 250), (224, 298)),
    "grey_alpha_png": ("grey_alpha.png", "LA", (250, 260), (232, 224)),
    "palette_png": ("palette.png", "P", (256, 256), (224, 224)),
    "cmyk_jpeg": ("cmyk.jpg", "CMYK", (640, 480), (224, 298)),
    "bilevel_png": ("bilevel.png", "1", (230, 250), (243, 224)),
    "small_upscaled_bmp": ("small.bmp", "RGB", (60, 40), (224, 336)),
    "tiny_portrait_tiff": ("tiny.tif", "RGB", (17, 31), (408, 224)),
    "square_500_webp": ("square.webp", "RGB", (500, 500), (224, 224)),
    "square_224_png": ("exact.png", "RGB", (224, 224), (224, 224)),
}


def write_case(directory: Path, name: str, rng: np.random.Generator) -> Path:
    """Writes the test image ``CASES[name]`` into ``directory`` and returns its path."""
    file_name, mode, (width, height), _ = CASES[name]
    rgb = PIL.Image.fromarray(real_looking(rng, height, width))
    if mode == "RGBA":
        alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
        img = PIL.Image.fromarray(np.dstack([np.asarray(rgb), alpha]), mode="RGBA")
    elif mode == "LA":
        img = rgb.convert("LA")
    elif mode == "P":
        img = rgb.quantize(colors=64, method=PIL.Image.Quantize.MEDIANCUT)
    else:
        img = rgb.convert(mode)
    path = directory / file_name
    img.save(path, **({"quality": 90} if path.suffix in (".jpg", ".webp") else {}))
    with PIL.Image.open(path) as check:  # the mode the reader sees is the one under test
        if check.mode != mode:
            raise AssertionError(f"{path}: wrote mode {mode}, reads back as {check.mode}")
    return path
