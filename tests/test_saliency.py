"""Resizing, TranSalNet pre/post-processing and the saliency-map files, against NumPy references.

The model itself is replaced by a cheap stand-in here (its equivalence with PyTorch is
tests/test_transalnet.py); these tests check geometry, quantisation, file handling and errors.
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest
import torch_transalnet_reference as ref

from ais_jax.data import datasets, files
from ais_jax.data.resize import resize_bilinear
from ais_jax.explain import saliency

REPO = Path(__file__).resolve().parents[1]

RESIZE_CASES = [
    ((500, 500), (288, 288)),  # shrink by a non-integer factor
    ((600, 800), (288, 384)),  # shrink by an exact 2.083..
    ((288, 384), (1000, 1333)),  # enlarge
    ((14, 14), (300, 451)),  # heatmap upsampling (Aim 2)
    ((7, 5), (20, 3)),  # enlarge one axis, shrink the other
    ((1, 9), (4, 4)),  # a single row: edge clamping only
    ((36, 48), (18, 24)),  # exact 2x shrink (OpenCV switches to INTER_AREA: same values)
]


@pytest.mark.parametrize("in_hw,out_hw", RESIZE_CASES)
@pytest.mark.parametrize("channels", [(), (3,)])
def test_resize_matches_float64_opencv_formula(in_hw, out_hw, channels):
    x = np.random.default_rng(0).random((*in_hw, *channels)).astype(np.float32)
    got = np.asarray(resize_bilinear(x, out_hw))
    assert got.shape == (*out_hw, *channels) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref.cv2_linear(x, out_hw), rtol=0, atol=5e-7)


def test_resize_reproduces_planted_linear_ramp_and_jits():
    # A linear ramp is reproduced exactly inside the image and clamped flat at the edges.
    ramp = np.arange(8, dtype=np.float32)[None, :].repeat(3, 0)  # [3, 8]
    got = np.asarray(jax.jit(resize_bilinear, static_argnums=1)(ramp, (3, 16)))
    want = np.clip((np.arange(16) + 0.5) / 2 - 0.5, 0, 7)
    np.testing.assert_allclose(got, np.broadcast_to(want, (3, 16)), atol=1e-6)


def test_resize_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        resize_bilinear(jnp.zeros(5), (2, 2))
    with pytest.raises(ValueError, match="positive"):
        resize_bilinear(jnp.zeros((4, 4)), (0, 2))


def test_resize_against_opencv_bounds_its_rounding():
    import cv2  # test-only dependency (opencv-python-headless), to bound OpenCV's own rounding

    rng = np.random.default_rng(1)
    for in_hw, out_hw in RESIZE_CASES:
        x = rng.random((*in_hw, 3)).astype(np.float32)
        got = np.asarray(resize_bilinear(x, out_hw))
        # OpenCV rounds sample positions to float32: differences of order 1e-4 at most.
        cv = cv2.resize(x, out_hw[::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(got, cv, atol=2e-4)
        # Its uint8 path uses fixed-point weights: at most one grey level apart.
        x8 = (x * 255).astype(np.uint8)
        ours = saliency._round_u8(resize_bilinear(x8, out_hw)).astype(int)
        theirs = cv2.resize(x8, out_hw[::-1], interpolation=cv2.INTER_LINEAR).astype(int)
        assert np.abs(ours - theirs).max() <= 1
    # The release's whole pre- and post-processing, run with OpenCV, agrees to one grey level.
    img = rng.integers(0, 256, (333, 250, 3), dtype=np.uint8)
    def cv_u8(a, hw):
        return cv2.resize(a, hw[::-1], interpolation=cv2.INTER_LINEAR)
    letterboxed = ref.release_letterbox(img[..., ::-1], cv_u8).astype(np.float32) / 255
    assert np.abs(saliency.preprocess(img) - letterboxed).max() <= 1 / 255 + 1e-7
    pred = rng.random((288, 384)).astype(np.float32)
    def cv_post(a, hw):
        return cv2.resize(a.astype(np.uint8), hw[::-1],
                                           interpolation=cv2.INTER_LINEAR).astype(np.float64)
    pred_u8 = np.floor(pred * 255)  # ToPILImage's truncation; OpenCV then resizes 8-bit data
    want = ref.release_postprocess(pred_u8, (333, 250), cv_post, quantize=False) / 255
    assert np.abs(saliency.postprocess(pred, (333, 250)) - want).max() <= 1 / 255 + 1e-7


@pytest.mark.parametrize("shape", [(300, 300), (333, 250), (200, 500), (288, 384), (50, 1000)])
def test_preprocess_matches_release_letterbox(shape):
    rgb = np.random.default_rng(2).integers(0, 256, (*shape, 3), dtype=np.uint8)
    got = saliency.preprocess(rgb)
    want = ref.release_letterbox(rgb[..., ::-1]).astype(np.float32) / 255
    assert got.shape == (288, 384, 3) and got.dtype == np.float32
    # Identical but for float32-vs-float64 ties at half a grey level (rational scales make
    # exact ties common: 0.04% of values for 300 -> 288).
    diff = np.abs(got - want)
    assert diff.max() <= 1 / 255 + 1e-7 and (diff > 1e-7).mean() < 1e-2


def test_preprocess_planted_geometry_bgr_and_background():
    # A wide red image: full width, centred rows, BGR channel order, background 1/255.
    rgb = np.zeros((100, 300, 3), np.uint8)
    rgb[..., 0] = 255
    x = saliency.preprocess(rgb)
    (new_h, new_w), (top, left) = saliency.letterbox_geometry(100, 300)
    assert (new_h, new_w, top, left) == (128, 384, 80, 0)
    np.testing.assert_array_equal(x[top:top + new_h, :, 2], 1.0)  # red is the last channel
    np.testing.assert_array_equal(x[top:top + new_h, :, :2], 0.0)
    np.testing.assert_array_equal(x[:top], np.float32(1 / 255))
    np.testing.assert_array_equal(x[top + new_h:], np.float32(1 / 255))
    # A tall image: full height, centred columns.
    assert saliency.letterbox_geometry(400, 100) == ((288, 72), (0, 156))
    with pytest.raises(ValueError, match="uint8 RGB"):
        saliency.preprocess(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("shape", [(300, 300), (333, 250), (200, 500), (288, 384), (1000, 37)])
@pytest.mark.parametrize("quantize", [True, False])
def test_postprocess_matches_release(shape, quantize):
    pred = np.random.default_rng(3).random((288, 384)).astype(np.float32)
    got = saliency.postprocess(pred, shape, quantize=quantize)
    want = ref.release_postprocess(pred, shape, quantize=quantize)
    assert got.shape == shape and got.dtype == np.float32
    if quantize:  # identical 8-bit levels but for float32 ties at half a level
        diff = np.abs(got - want)
        assert diff.max() <= 1 / 255 + 1e-7 and (diff > 1e-6).mean() < 1e-2
    else:
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("shape", [(240, 480), (480, 240), (300, 300)])
def test_letterbox_then_postprocess_restores_orientation(shape):
    # A smooth image letterboxed as if it were the model's output comes back where it was,
    # for wide and tall images alike (the release's scripts swapped H and W for non-square).
    h, w = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    image = (0.2 + 0.6 * yy * (1 - 0.5 * xx)).astype(np.float32)  # [h, w], varies along both
    rgb = np.repeat((image * 255).astype(np.uint8)[..., None], 3, -1)
    letterboxed = saliency.preprocess(rgb)[..., 0]
    back = saliency.postprocess(letterboxed, shape, quantize=False)
    assert back.shape == shape
    # The outermost pixels blend with the letterbox background; the rest is the image.
    np.testing.assert_allclose(back[1:-1, 1:-1], image[1:-1, 1:-1], atol=0.01)


def _fake_model(monkeypatch, calls):
    """Replaces the compiled network by a cheap map of the input, so file handling is tested."""

    def compiled(batch_size):
        def run(variables, inputs):
            calls.append(inputs.shape)
            sal = jax.nn.sigmoid(3 * inputs[..., 2] - 1 + variables["params"]["offset"])
            return sal, {}
        return run

    monkeypatch.setattr(saliency, "compiled_model", compiled)


def _write_images(folder, shapes):
    rng = np.random.default_rng(4)
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for name, shape in shapes.items():
        pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        PIL.Image.fromarray(pixels).save(folder / name)
        images[name.rsplit(".", 1)[0]] = pixels
    return images


def test_write_saliency_maps_writes_resumes_and_records_ids(tmp_path, monkeypatch):
    calls = []
    _fake_model(monkeypatch, calls)
    params = {"offset": np.float32(0.0)}
    images = _write_images(tmp_path / "data" / "images",
                           {"b_tall.png": (90, 40), "a_square.png": (64, 64),
                            "c_wide.bmp": (30, 100)})
    out = tmp_path / "sal"
    run = saliency.write_saliency_maps(tmp_path / "data", out, params, weights_sha256="w",
                                       batch_size=2, progress=False)
    assert run.image_ids == ["a_square", "b_tall", "c_wide"]
    assert run.computed == run.image_ids and run.skipped == [] and run.changed == []
    assert calls == [(2, 288, 384, 3)] * 2  # the last batch is padded to the compiled size
    assert run.seconds_per_image > 0
    for image_id, pixels in images.items():
        got = np.load(out / f"{image_id}.npy")
        x = saliency.preprocess(pixels)
        want = saliency.postprocess(np.asarray(jax.nn.sigmoid(3 * x[..., 2] - 1)),
                                    pixels.shape[:2])
        assert got.dtype == np.float32 and got.shape == pixels.shape[:2]
        np.testing.assert_array_equal(got, want)
    manifest = json.loads((out / "image_ids.json").read_text())
    assert manifest["image_ids"] == run.image_ids
    assert manifest["shapes"]["b_tall"] == [90, 40]
    assert saliency.read_manifest(out) == (run.image_ids, [(64, 64), (90, 40), (30, 100)])

    # Resume: a deleted map is recomputed, the others are kept untouched (not recomputed).
    (out / "b_tall.npy").unlink()
    kept = (out / "a_square.npy").stat().st_mtime_ns
    calls.clear()
    run = saliency.write_saliency_maps(tmp_path / "data", out, {"offset": np.float32(5.0)},
                                       weights_sha256="w", batch_size=2, progress=False)
    with pytest.raises(ValueError, match="image_ids.json: the maps in .* made with"):
        saliency.write_saliency_maps(tmp_path / "data", out, params, weights_sha256="abc",
                                     progress=False)
    assert run.computed == ["b_tall"] and run.skipped == ["a_square", "c_wide"]
    assert calls == [(2, 288, 384, 3)]
    assert (out / "a_square.npy").stat().st_mtime_ns == kept
    maps = saliency.load_saliency_maps(out, *saliency.read_manifest(out))
    assert [m.shape for m in maps] == [(64, 64), (90, 40), (30, 100)]
    assert maps[1].min() > 0.9  # the new offset saturates the recomputed map only
    assert not list(out.glob("*.tmp"))


def test_write_saliency_maps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: image folder not found"):
        saliency.write_saliency_maps(tmp_path / "nope", tmp_path / "out", {}, weights_sha256="w",
                                     progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "._hidden.jpg").write_bytes(b"macOS metadata")
    with pytest.raises(ValueError, match="empty: no image files"):
        saliency.image_paths(tmp_path / "empty")
    _write_images(tmp_path / "dup", {"x.png": (8, 8), "x.jpg": (8, 8)})
    with pytest.raises(ValueError, match="share the name 'x'"):
        saliency.image_paths(tmp_path / "dup")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg: cannot read image"):
        saliency.write_saliency_maps(tmp_path / "bad", tmp_path / "out", {}, weights_sha256="w",
                                     progress=False)
    assert not (tmp_path / "out").exists()


def test_load_saliency_maps_accepts_user_npy_and_png(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.random((20, 30)).astype(np.float64)
    np.save(tmp_path / "a.npy", a)
    b8 = rng.integers(0, 256, (15, 10), dtype=np.uint8)
    PIL.Image.fromarray(b8).save(tmp_path / "b.png")
    c16 = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    PIL.Image.fromarray(c16).save(tmp_path / "c.png")
    grey_rgb = np.repeat(b8[..., None], 3, -1)
    PIL.Image.fromarray(grey_rgb).save(tmp_path / "d.png")
    (tmp_path / "unrelated.txt").write_text("ignored")
    maps = saliency.load_saliency_maps(tmp_path, ["a", "b", "c", "d"],
                                       [(20, 30), (15, 10), (5, 6), (15, 10)])
    np.testing.assert_array_equal(maps[0], a)  # the user's float64 values, as given
    np.testing.assert_array_equal(maps[1], b8.astype(np.float32) / 255)
    np.testing.assert_allclose(maps[2], c16 / 65535, rtol=1e-6)
    np.testing.assert_array_equal(maps[3], maps[1])
    assert [m.dtype for m in maps] == [np.float64] + [np.float32] * 3


def test_load_saliency_maps_errors_name_the_file(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((20, 30)))
    with pytest.raises(ValueError, match=r"wide.npy: .*\(20, 30\).*\(30, 20\).*swapped"):
        saliency.load_saliency_maps(tmp_path, ["wide"], [(30, 20)])
    with pytest.raises(FileNotFoundError, match=r"2 image\(s\): m1, m2"):
        saliency.load_saliency_maps(tmp_path, ["wide", "m1", "m2"], [(20, 30)] * 3)
    PIL.Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match="two saliency maps for image 'wide'"):
        saliency.load_saliency_maps(tmp_path, ["wide"], [(20, 30)])
    np.save(tmp_path / "nan.npy", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="nan.npy: .*NaN"):
        saliency.load_saliency_maps(tmp_path, ["nan"], [(2, 2)])
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 0] = 200
    PIL.Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="colour.png: .*greyscale"):
        saliency.load_saliency_maps(tmp_path, ["colour"], [(4, 4)])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj.npy: cannot read a saliency map \(.npy\): .*pickle"):
        saliency.load_saliency_maps(tmp_path, ["obj"], [(1,)])
    with pytest.raises(FileNotFoundError, match="no such saliency-map folder"):
        saliency.load_saliency_maps(tmp_path / "nope", ["a"], [(1, 1)])
    with pytest.raises(FileNotFoundError, match="no saliency manifest"):
        saliency.read_manifest(tmp_path)


def test_resume_recomputes_maps_of_changed_images(tmp_path, monkeypatch):
    calls = []
    _fake_model(monkeypatch, calls)
    params = {"offset": np.float32(0.0)}
    data, out = tmp_path / "data", tmp_path / "sal"
    _write_images(data, {"a.png": (20, 30), "b.png": (20, 30)})
    saliency.write_saliency_maps(data, out, params, weights_sha256="w", progress=False)
    manifest = json.loads((out / "image_ids.json").read_text())
    assert set(manifest["image_sha256"]) == {"a", "b"}
    kept = (out / "b.npy").stat().st_mtime_ns
    # Same name, same size, new content: only its map is computed again.
    new_a = np.zeros((20, 30, 3), np.uint8)
    PIL.Image.fromarray(new_a).save(data / "a.png")
    calls.clear()
    run = saliency.write_saliency_maps(data, out, params, weights_sha256="w", batch_size=2,
                                       progress=False)
    assert run.changed == ["a"] and run.computed == ["a"] and run.skipped == ["b"]
    assert calls == [(2, 288, 384, 3)]
    x = saliency.preprocess(new_a)
    want = saliency.postprocess(np.asarray(jax.nn.sigmoid(3 * x[..., 2] - 1)), (20, 30))
    np.testing.assert_array_equal(np.load(out / "a.npy"), want)
    assert (out / "b.npy").stat().st_mtime_ns == kept
    # Maps found without a manifest entry for their image are not trusted either.
    np.save(out / "b.npy", np.zeros((20, 30), np.float32))
    manifest = json.loads((out / "image_ids.json").read_text())
    del manifest["image_sha256"]["b"]
    (out / "image_ids.json").write_text(json.dumps(manifest))
    run = saliency.write_saliency_maps(data, out, params, weights_sha256="w", progress=False)
    assert run.changed == ["b"] and run.skipped == ["a"]
    assert np.load(out / "b.npy").max() > 0


def test_weights_sha256_is_required(tmp_path):
    with pytest.raises(TypeError, match="weights_sha256"):
        saliency.write_saliency_maps(tmp_path, tmp_path / "out", {}, progress=False)


def test_images_are_listed_as_for_the_datasets(tmp_path):
    _write_images(tmp_path, {"b.png": (4, 4), "a.JPG": (4, 4), "c.gif": (4, 4)})
    (tmp_path / "._a.jpg").write_bytes(b"macOS metadata")
    (tmp_path / "notes.txt").write_text("x")
    assert saliency.image_paths(tmp_path) == list(files.list_images(tmp_path))
    assert [p.name for p in saliency.image_paths(tmp_path)] == ["a.JPG", "b.png"]
    assert saliency.IMAGE_SUFFIXES is files.IMAGE_SUFFIXES


def test_load_saliency_maps_by_dataset_file_names_or_stems(tmp_path):
    _write_images(tmp_path / "images", {"x.png": (6, 5), "y.v2.JPG": (4, 3)})
    h = np.eye(2)
    np.save(tmp_path / "h.npy", h)
    ds = datasets.load_plain(tmp_path / "images", tmp_path / "h.npy", kind="similarity")
    assert ds.image_ids == ("x.png", "y.v2.JPG") and ds.image_stems == ("x", "y.v2")
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "x.npy", np.full((6, 5), 0.25))
    np.save(maps / "y.v2.npy", np.full((4, 3), 0.5))
    shapes = [(6, 5), (4, 3)]
    by_name = saliency.load_saliency_maps(maps, ds.image_ids, shapes)
    by_stem = saliency.load_saliency_maps(maps, ds.image_stems, shapes)
    for a, b, value in zip(by_name, by_stem, (0.25, 0.5), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.shape == b.shape and a.flat[0] == value
    # Any known image suffix is removed, whatever the image's own: still y.v2.npy.
    assert saliency.load_saliency_maps(maps, ["x", "y.v2.png"], shapes)[1].flat[0] == 0.5
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\): z.jpeg"):
        saliency.load_saliency_maps(maps, ["x", "z.jpeg"], shapes)
    with pytest.raises(ValueError, match="'x.png' and 'x.jpg' share the name 'x'"):
        saliency.load_saliency_maps(maps, ["x.png", "x.jpg"], [(6, 5)] * 2)
    with pytest.raises(ValueError, match="'x' and 'x.tif' share the name 'x'"):
        saliency.load_saliency_maps(maps, ["x", "x.tif"], [(6, 5)] * 2)


def test_png_modes_la_p_and_1(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    want = grey.astype(np.float32) / 255
    # LA: grey plus an alpha that differs from it; alpha is ignored.
    la = np.stack([grey, np.full_like(grey, 255)], -1)
    PIL.Image.fromarray(la, "LA").save(tmp_path / "la.png")
    # P: a palette of greys, and a palette of colours whose luminance would look grey.
    PIL.Image.fromarray(grey).convert("P").save(tmp_path / "p_grey.png")
    colour = np.zeros((3, 4, 3), np.uint8)
    colour[..., 0] = 200
    PIL.Image.fromarray(colour).convert("P").save(tmp_path / "p_colour.png")
    bits = (grey > 100)
    PIL.Image.fromarray(bits).save(tmp_path / "one.png")
    modes = {}
    for name in ("la", "p_grey", "p_colour", "one"):
        with PIL.Image.open(tmp_path / f"{name}.png") as img:
            modes[name] = img.mode
    assert modes == {"la": "LA", "p_grey": "P", "p_colour": "P", "one": "1"}
    la_map, p_map, one_map = saliency.load_saliency_maps(tmp_path, ["la", "p_grey", "one"],
                                                         [(3, 4)] * 3)
    np.testing.assert_array_equal(la_map, want)
    np.testing.assert_array_equal(p_map, want)
    np.testing.assert_array_equal(one_map, bits.astype(np.float32))
    with pytest.raises(ValueError, match="p_colour.png: .*greyscale.*P image has differing"):
        saliency.load_saliency_maps(tmp_path, ["p_colour"], [(3, 4)])
    # Another format under a .png name (PIL opens files by content) is refused as such.
    PIL.Image.fromarray(colour).convert("CMYK").save(tmp_path / "cmyk.png", format="JPEG")
    with pytest.raises(ValueError, match=r"cmyk.png: a JPEG image named .png; a saliency map is "
                                         r".*\.npy .*or .*\.png \(greyscale"):
        saliency.load_saliency_maps(tmp_path, ["cmyk"], [(3, 4)])


def test_command_rejects_batch_size_below_one(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.saliency", f"--data_dir={tmp_path}",
         f"--out={tmp_path / 'maps'}", "--batch_size=0"], cwd=REPO, capture_output=True,
        text=True, timeout=120)
    assert result.returncode != 0
    assert "--batch_size=0: 0 is not a positive integer" in result.stderr
    assert not (tmp_path / "maps").exists()
