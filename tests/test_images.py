"""Image pipeline (SPEC §1) against a PIL + torch reference and float64 NumPy expectations."""

import io

import numpy as np
import PIL.Image
import pytest
import torch
from make_images import CASES, real_looking, write_case, write_png16

from ais_jax.data import images

# torchvision ToTensor + Normalize, written out with torch ops (torchvision is not installed).
_MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32)[:, None, None]
_STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32)[:, None, None]


def _torch_normalise(rgb: PIL.Image.Image) -> np.ndarray:
    """[H, W, 3] float32 as torchvision's ToTensor() then Normalize(mean, std)."""
    chw = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    return ((chw - _MEAN) / _STD).permute(1, 2, 0).numpy()


def _triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    """float64 [n_out, n_in] antialiased bilinear: triangle filter widened by the shrink factor."""
    scale = n_in / n_out
    width = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    w = np.maximum(0.0, 1.0 - np.abs((np.arange(n_in) + 0.5 - centres[:, None]) / width))
    return w / w.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pipeline_matches_pil_torch_reference(case, tmp_path):
    path = write_case(tmp_path, case, np.random.default_rng(sorted(CASES).index(case)))
    out = images.preprocess(images.resize_shorter(images.open_rgb(path)))

    with PIL.Image.open(path) as ref:
        ref = ref.convert("RGB")  # the released code's conversion
        expected_hw = CASES[case][3]  # worked out by hand from int(224 * long / short)
        ref = ref.resize(expected_hw[::-1], PIL.Image.Resampling.BILINEAR)
    expected = _torch_normalise(ref)

    assert out.dtype == np.float32
    assert out.shape == (*expected_hw, 3)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_resize_is_antialiased_bilinear(tmp_path):
    # Noisy content is where antialiasing matters: a float64 triangle filter whose support
    # widens with the shrink factor must match to PIL's 8-bit rounding (<= 1 grey level).
    rng = np.random.default_rng(7)
    for h, w in [(375, 500), (500, 500), (40, 60), (31, 17)]:
        noise = rng.integers(-60, 61, (h, w, 3))
        pixels = np.clip(real_looking(rng, h, w) + noise, 0, 255).astype(np.uint8)
        out = np.asarray(images.resize_shorter(PIL.Image.fromarray(pixels)), np.float64)
        nh, nw = out.shape[:2]
        expected = _separable(_triangle_weights(h, nh), pixels, _triangle_weights(w, nw))
        assert np.abs(out - expected).max() <= 1.0 + 1e-9
        if h > nh:  # shrinking: plain (non-antialiased) bilinear would be far off
            plain = _separable(_plain_bilinear(h, nh), pixels, _plain_bilinear(w, nw))
            assert np.abs(out - plain).max() > 10


def _separable(rows: np.ndarray, pixels: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float64 ``rows @ pixels @ cols.T`` per channel: [i, h] x [h, w, 3] x [j, w] -> [i, j, 3]."""
    return np.einsum("ih,hwc,jw->ijc", rows, pixels.astype(np.float64), cols, optimize=True)


def _plain_bilinear(n_in: int, n_out: int) -> np.ndarray:
    """float64 [n_out, n_in] two-tap bilinear interpolation without antialiasing."""
    centres = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in) - centres[:, None]))
    return w / w.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "height, width, expected",
    [
        (375, 500, (224, 298)),  # landscape: 224 * 500 / 375 = 298.67 -> 298
        (500, 375, (298, 224)),
        (500, 500, (224, 224)),
        (300, 300, (224, 224)),  # Peterson animals
        (224, 224, (224, 224)),
        (40, 60, (224, 336)),  # upscaled
        (1, 3, (224, 672)),
        (448, 336, (298, 224)),  # 224 * 448 / 336 = 298.67
    ],
)
def test_resized_shape_follows_torchvision_rule(height, width, expected):
    assert images.resized_shape(height, width) == expected


def test_resize_other_size():
    img = PIL.Image.fromarray(real_looking(np.random.default_rng(0), 30, 50))
    assert images.resize_shorter(img, 10).size == (16, 10)  # PIL size is (W, H)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    rng = np.random.default_rng(3)
    values = (real_looking(rng, 40, 50)[..., 0].astype(np.uint16) * 257) + rng.integers(
        0, 257, (40, 50), dtype=np.uint16
    )  # full 16-bit range
    path = write_png16(tmp_path / "grey16.png", values)
    with PIL.Image.open(path) as raw:
        assert raw.mode == "I;16"
        clipped = np.asarray(raw.convert("L"))

    rgb = np.asarray(images.open_rgb(path))
    expected = np.floor(values.astype(np.float64) / 256)  # keep the high byte
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], expected)
    assert (clipped == 255).mean() > 0.9  # what PIL alone would have given
    assert rgb.std() > 20

    # A 16-bit RGB PNG of the same values is decoded by PIL itself (high byte): identical.
    rgb16 = write_png16(tmp_path / "rgb16.png", np.dstack([values] * 3))
    np.testing.assert_array_equal(np.asarray(images.open_rgb(rgb16)), rgb)

    # And the whole pipeline on the 16-bit file equals it on the 8-bit grey image.
    grey8 = tmp_path / "grey8.png"
    PIL.Image.fromarray(expected.astype(np.uint8), mode="L").save(grey8)
    np.testing.assert_array_equal(
        images.load_batch([path], size=32), images.load_batch([grey8], size=32)
    )


def test_int32_image_in_16_bit_range(tmp_path):
    values = np.arange(0, 65536, 1024, dtype=np.int32).reshape(8, 8)
    path = tmp_path / "int32.tif"
    PIL.Image.fromarray(values, mode="I").save(path)
    rgb = np.asarray(images.open_rgb(path))
    np.testing.assert_array_equal(rgb[..., 1], values // 256)

    PIL.Image.fromarray(values * 4, mode="I").save(path)
    with pytest.raises(ValueError, match=r"int32\.tif.*\[0, 65535\]"):
        images.open_rgb(path)


def test_float_image(tmp_path):
    values = np.linspace(0, 255, 64, dtype=np.float32).reshape(8, 8)
    path = tmp_path / "float.tif"
    PIL.Image.fromarray(values, mode="F").save(path)
    rgb = np.asarray(images.open_rgb(path))
    np.testing.assert_array_equal(rgb[..., 2], np.floor(values.astype(np.float64)))

    PIL.Image.fromarray(values / 100 - 1, mode="F").save(path)
    with pytest.raises(ValueError, match=r"float\.tif.*outside \[0, 255\]"):
        images.open_rgb(path)


def test_alpha_is_dropped_not_composited(tmp_path):
    rgb = real_looking(np.random.default_rng(4), 12, 16)
    path = tmp_path / "transparent.png"
    PIL.Image.fromarray(np.dstack([rgb, np.zeros((12, 16), np.uint8)]), mode="RGBA").save(path)
    np.testing.assert_array_equal(np.asarray(images.open_rgb(path)), rgb)


def test_palette_with_byte_transparency(tmp_path):
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    img = PIL.Image.fromarray(index, mode="P")
    img.putpalette(palette.tobytes())
    path = tmp_path / "palette_trns.png"
    img.save(path, transparency=bytes(rng.integers(0, 256, 256, dtype=np.uint8)))
    with PIL.Image.open(path) as check:
        assert isinstance(check.info["transparency"], bytes)
    # No PIL warning (warnings are errors here), and colours are the palette lookup.
    np.testing.assert_array_equal(np.asarray(images.open_rgb(path)), palette[index])


def test_exif_orientation_is_not_applied(tmp_path):
    pixels = real_looking(np.random.default_rng(6), 20, 40)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    PIL.Image.fromarray(pixels).save(path, exif=exif, quality=95)
    with PIL.Image.open(path) as check:
        assert check.getexif()[0x0112] == 6
    assert images.open_rgb(path).size == (40, 20)  # stored (W, H), not rotated


def test_load_batch(tmp_path):
    rng = np.random.default_rng(8)
    paths = []
    for i, mode in enumerate(["RGB", "L", "CMYK"]):
        paths.append(tmp_path / f"img{i}.jpg")
        PIL.Image.fromarray(real_looking(rng, 300, 300)).convert(mode).save(paths[-1])
    paths.append(write_png16(tmp_path / "img3.png", rng.integers(0, 65536, (90, 90))))
    batch = images.load_batch([str(p) for p in paths])
    assert batch.shape == (4, 224, 224, 3) and batch.dtype == np.float32
    for x, p in zip(batch, paths, strict=True):
        one = images.preprocess(images.resize_shorter(images.open_rgb(p)))
        np.testing.assert_array_equal(x, one)


def test_load_batch_rejects_mixed_aspect_ratios(tmp_path):
    rng = np.random.default_rng(9)
    names = ["a.png", "b.png", "c.png"]
    for name, (h, w) in zip(names, [(50, 50), (60, 60), (50, 80)], strict=True):
        PIL.Image.fromarray(real_looking(rng, h, w)).save(tmp_path / name)
    assert images.load_batch([tmp_path / n for n in names[:2]], size=16).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match=r"c\.png: resized to 16x25 .*a\.png.*aspect ratio"):
        images.load_batch([tmp_path / n for n in names], size=16)
    with pytest.raises(ValueError, match="no image paths"):
        images.load_batch([])


def test_load_batch_progress_bar(tmp_path, capsys):
    path = tmp_path / "one.png"
    PIL.Image.fromarray(real_looking(np.random.default_rng(10), 8, 8)).save(path)
    images.load_batch([path] * 2, size=8, progress=True)
    assert "images" in capsys.readouterr().err
    images.load_batch([path] * 2, size=8)
    assert capsys.readouterr().err == ""


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(real_looking(np.random.default_rng(11), 64, 64)).save(buf, "JPEG")
    return buf.getvalue()


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(real_looking(np.random.default_rng(12), 64, 64)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.jpg", b"this is not an image"),
        ("empty.png", b""),
        ("truncated.jpg", _jpeg_bytes()[:400]),
        ("truncated.png", _png_bytes()[:300]),
        ("corrupt.png", _png_bytes()[:60] + b"\x00" * 200 + _png_bytes()[260:]),
    ],
)
def test_unreadable_files_name_the_file(name, content, tmp_path):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{name}: cannot read image"):
        images.open_rgb(path)
    with pytest.raises(ValueError, match=rf"{name}: cannot read image"):
        images.load_batch([path])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.png: image file not found"):
        images.open_rgb(tmp_path / "nothing.png")
    with pytest.raises(ValueError, match="not a file"):
        images.open_rgb(tmp_path)


def test_wrong_inputs_to_resize_and_preprocess():
    grey = PIL.Image.new("L", (4, 4))
    with pytest.raises(ValueError, match="mode 'L'"):
        images.resize_shorter(grey)
    with pytest.raises(ValueError, match="mode 'L'"):
        images.preprocess(grey)
    with pytest.raises(ValueError, match=r"float32 \(4, 4, 3\)"):
        images.preprocess(np.zeros((4, 4, 3), np.float32))
    out = images.preprocess(np.full((2, 3, 3), 255, np.uint8))
    white = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(out[0, 0], white, rtol=1e-6)


def test_constants_are_read_only():
    assert images.PREPROCESS_VERSION == 1
    with pytest.raises(ValueError):
        images.IMAGENET_MEAN[0] = 0.0
