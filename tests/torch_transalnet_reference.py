"""NumPy references for TranSalNet's released pre/post-processing (test helper only).

``cv2_linear`` is OpenCV's ``INTER_LINEAR`` formula in float64 (half-pixel centres, two taps,
edge clamping, no antialiasing). ``release_letterbox`` and ``release_postprocess`` follow the
release's ``preprocess_img`` / ``postprocess_img`` step by step, with the resize passed in, so
the same code runs with this float64 formula or with ``cv2.resize`` itself.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]  # (array, (out_h, out_w)) -> array


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lo = np.floor(pos)
    frac = pos - lo
    lo = lo.astype(np.int64)
    return np.clip(lo, 0, n_in - 1), np.clip(lo + 1, 0, n_in - 1), frac


def cv2_linear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV's bilinear resize of the leading (H, W) axes, in float64."""
    x = np.asarray(x, np.float64)
    y0, y1, fy = _taps(x.shape[0], size[0])
    x0, x1, fx = _taps(x.shape[1], size[1])
    fy = fy.reshape((-1, 1) + (1,) * (x.ndim - 2))
    fx = fx.reshape((1, -1) + (1,) * (x.ndim - 2))
    top = x[y0][:, x0] * (1 - fx) + x[y0][:, x1] * fx
    bottom = x[y1][:, x0] * (1 - fx) + x[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def cv2_linear_u8(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`cv2_linear` on 8-bit data, rounded back to 8 bits (exact arithmetic, no fixed point)."""
    return np.clip(np.floor(cv2_linear(x, size) + 0.5), 0, 255).astype(np.uint8)


def release_letterbox(bgr: np.ndarray, resize_u8: Resize = cv2_linear_u8) -> np.ndarray:
    """The release's ``preprocess_img`` on a decoded BGR uint8 image -> ``[288, 384, 3]`` uint8."""
    rows, cols = 288, 384
    padded = np.ones((rows, cols, 3), np.uint8)
    h, w = bgr.shape[:2]
    if h / rows > w / cols:
        new_cols = (w * rows) // h
        padded[:, (cols - new_cols) // 2:(cols - new_cols) // 2 + new_cols] = resize_u8(
            bgr, (rows, new_cols))
    else:
        new_rows = (h * cols) // w
        padded[(rows - new_rows) // 2:(rows - new_rows) // 2 + new_rows, :] = resize_u8(
            bgr, (new_rows, cols))
    return padded


def release_postprocess(pred: np.ndarray, shape: tuple[int, int], resize: Resize = cv2_linear,
                        *, quantize: bool = True) -> np.ndarray:
    """The release's ``postprocess_img`` (after ``ToPILImage``) -> ``[H, W]`` float64 in [0, 1].

    With ``quantize``, the sigmoid map is truncated to 8 bits (``ToPILImage`` on a float tensor)
    and the resized map rounded to 8 bits, as OpenCV's uint8 resize returns it.
    """
    pred = np.asarray(pred, np.float64)
    if quantize:
        pred = np.floor(pred * 255)
    h, w = shape
    ph, pw = pred.shape
    if h / ph > w / pw:
        new_cols = (pw * h) // ph
        out = resize(pred, (h, new_cols))
        out = out[:, (new_cols - w) // 2:(new_cols - w) // 2 + w]
    else:
        new_rows = (ph * w) // pw
        out = resize(pred, (new_rows, w))
        out = out[(new_rows - h) // 2:(new_rows - h) // 2 + h, :]
    if quantize:
        return np.clip(np.floor(out + 0.5), 0, 255) / 255
    return out
