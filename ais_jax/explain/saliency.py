"""Saliency maps from TranSalNet-Dense, with the release's pre- and post-processing (SPEC §6).

``preprocess`` (8-bit RGB -> BGR, letterboxed into 288x384 on a background of 1, /255) ->
`ais_jax.models.transalnet.TranSalNet` -> ``postprocess`` (8-bit truncation, bilinear resize
covering the original (H, W), centre crop). ``write_saliency_maps`` runs that over a folder of
images into one ``.npy`` per image; ``load_saliency_maps`` reads those, or maps a user brings.

Choices, where the release (OpenCV) and this port could differ:

* Images are read by `ais_jax.data.images.open_rgb`, as for the AIS heatmaps: EXIF orientation
  is **not** applied (OpenCV's ``imread`` would apply it), so a saliency map has the stored
  (H, W) of its image, the same as the image's AIS heatmap. Images carrying an EXIF rotation
  therefore get the saliency of the image as stored, not as displayed.
* Both resizes are OpenCV's bilinear (`ais_jax.data.resize.resize_bilinear`), computed in
  float and rounded to 8 bits as OpenCV's uint8 path does; OpenCV's fixed-point weights make
  about one pixel in eight differ from it by one grey level.
* Saved maps are float32 in [0, 1]: the 8-bit map the release writes, divided by 255 (the model
  output truncated to 8 bits, resized, rounded to 8 bits).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
from tqdm.auto import tqdm

from ais_jax import preflight, storage
from ais_jax.data import images as image_io
from ais_jax.data.files import IMAGE_SUFFIXES, list_images
from ais_jax.data.resize import resize_bilinear
from ais_jax.models import transalnet
from ais_jax.models.transalnet import INPUT_HW, TranSalNet

MANIFEST = "image_ids.json"
LETTERBOX_BACKGROUND = 1  # the release pads with 8-bit value 1, not 0
# Bump when the maps this module writes change; recorded in the manifest.
SALIENCY_VERSION = 1


def _round_u8(x: jax.Array) -> np.ndarray:
    """Rounds to the nearest 8-bit level (half up, as OpenCV's fixed-point cast), clipped."""
    return np.clip(np.floor(np.asarray(x) + 0.5), 0, 255).astype(np.uint8)


def letterbox_geometry(height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where an (H, W) image goes inside the 288x384 model input, as the release computes it.

    Returns:
      ``((new_h, new_w), (top, left))``: the resized size and its offset; sizes and offsets are
      rounded down.
    """
    out_h, out_w = INPUT_HW
    if height / out_h > width / out_w:  # relatively taller: full height, pillarboxed
        new_w = min((width * out_h) // height, out_w)
        return (out_h, new_w), (0, (out_w - new_w) // 2)
    new_h = min((height * out_w) // width, out_h)
    return (new_h, out_w), ((out_h - new_h) // 2, 0)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """Makes the model input of one image: BGR, letterboxed into 288x384, scaled to [0, 1].

    Args:
      rgb: ``[H, W, 3]`` uint8 RGB pixels.

    Returns:
      ``[288, 384, 3]`` float32, BGR, background 1/255, no mean/std normalisation.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"preprocess expects uint8 RGB pixels [H, W, 3], got {rgb.dtype} "
                         f"{rgb.shape}")
    (new_h, new_w), (top, left) = letterbox_geometry(*rgb.shape[:2])
    canvas = np.full((*INPUT_HW, 3), LETTERBOX_BACKGROUND, np.uint8)
    canvas[top:top + new_h, left:left + new_w] = _round_u8(
        resize_bilinear(rgb[..., ::-1], (new_h, new_w)))
    return canvas.astype(np.float32) / np.float32(255)


def postprocess(saliency: np.ndarray, shape: tuple[int, int], *, quantize: bool = True
                ) -> np.ndarray:
    """Maps a model output back onto the original image: resize to cover, centre-crop.

    Args:
      saliency: ``[288, 384]`` sigmoid output.
      shape: the original ``(H, W)``.
      quantize: as the release, truncate the output to 8 bits first and round the resized map
        to 8 bits (the saved maps); ``False`` keeps floats throughout (for tests).

    Returns:
      ``[H, W]`` float32 in [0, 1].
    """
    saliency = np.asarray(saliency, np.float32)
    if saliency.shape != INPUT_HW:
        raise ValueError(f"postprocess expects a {INPUT_HW} saliency map, got {saliency.shape}")
    height, width = (int(s) for s in shape)
    src_h, src_w = INPUT_HW
    if quantize:  # torch's .byte() after .mul(255): truncation, not rounding
        saliency = np.floor(saliency * np.float32(255)).astype(np.float32)
    if height / src_h > width / src_w:  # relatively taller: full height, crop the width
        new_w = (src_w * height) // src_h
        resized = resize_bilinear(saliency, (height, new_w))
        left = (new_w - width) // 2
        out = resized[:, left:left + width]
    else:
        new_h = (src_h * width) // src_w
        resized = resize_bilinear(saliency, (new_h, width))
        top = (new_h - height) // 2
        out = resized[top:top + height, :]
    if quantize:
        return _round_u8(out).astype(np.float32) / np.float32(255)
    return np.asarray(out, np.float32)


@functools.lru_cache(maxsize=4)
def compiled_model(batch_size: int) -> Callable:
    """TranSalNet-Dense compiled ahead of time for one batch size (cached per batch size).

    Returns:
      ``f(variables, inputs [batch_size, 288, 384, 3]) -> (saliency, intermediates)``.
    """
    variables = {"params": transalnet.param_shapes()}
    inputs = jax.ShapeDtypeStruct((batch_size, *INPUT_HW, 3), jnp.float32)
    return jax.jit(TranSalNet().apply).lower(variables, inputs).compile()


def predict(params: dict, inputs: np.ndarray) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs TranSalNet-Dense on a batch of model inputs (compiled once per batch size).

    Args:
      params: converted parameters (`load_transalnet`).
      inputs: ``[n, 288, 384, 3]`` from `preprocess`.

    Returns:
      (saliency ``[n, 288, 384]``, intermediates), as `TranSalNet.__call__`.
    """
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 4 or inputs.shape[1:] != (*INPUT_HW, 3):
        raise ValueError(f"predict expects [n, {INPUT_HW[0]}, {INPUT_HW[1]}, 3] inputs, got "
                         f"{inputs.shape}")
    return compiled_model(inputs.shape[0])({"params": params}, inputs)


def load_transalnet(weights: str | os.PathLike = "transalnet_dense") -> tuple[dict, dict]:
    """Loads converted TranSalNet-Dense weights (from the cache by default).

    Raises:
      ais_jax.weights.MissingWeightsError: not converted yet; the message gives the command
        (``python -m weights_convert --model=transalnet_dense --src=/path/TranSalNet_Dense.pth``;
        the authors distribute ``TranSalNet_Dense.pth`` via a Google Drive link in the README of
        github.com/LJOVO/TranSalNet).
      ValueError: the file holds another model.
    """
    from ais_jax import weights as weights_io  # noqa: PLC0415  (keeps model import light)

    params, metadata = weights_io.load_converted(weights)
    if metadata.get("model") != "transalnet_dense":
        raise ValueError(f"{weights}: holds {metadata.get('model')!r} weights, expected "
                         "'transalnet_dense'")
    return jax.device_put(params), metadata


def image_paths(data_dir: str | os.PathLike) -> list[Path]:
    """The images of a dataset, as `ais_jax.data.files.list_images` lists them (the same
    files, in the same order, as the AIS heatmaps); ``<data_dir>/images/`` if that exists.

    Raises:
      FileNotFoundError: no such folder.
      ValueError: no image in it, or two images share a stem (their maps would share a name).
    """
    root = Path(data_dir).expanduser()
    folder = root / "images" if (root / "images").is_dir() else root
    paths = list(list_images(folder))
    stems: dict[str, Path] = {}
    for p in paths:
        if p.stem in stems:
            raise ValueError(f"{p} and {stems[p.stem]} share the name {p.stem!r}; saliency maps "
                             "are named after the image, so rename one")
        stems[p.stem] = p
    return paths


def image_shapes(paths: Sequence[Path]) -> dict[str, tuple[int, int]]:
    """Decodes every image in full (a truncated or damaged one fails here, by name).

    Returns:
      ``{stem: (H, W)}`` as stored (no EXIF rotation).

    Raises:
      FileNotFoundError, ValueError: an image that cannot be read, naming it.
    """
    return {p.stem: np.asarray(image_io.open_rgb(p)).shape[:2] for p in paths}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (keys the saliency resume and Aim 3's check of the images)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclasses.dataclass
class SaliencyRun:
    """What `write_saliency_maps` did: ids, which maps it computed, and measured times."""

    image_ids: list[str]
    shapes: list[tuple[int, int]]
    computed: list[str]  # includes `changed`
    skipped: list[str]
    changed: list[str]  # had a map, but the image is not the one it was computed from
    compile_seconds: float  # 0 when nothing was computed or it was compiled already
    seconds_per_image: float  # model + pre/post-processing after compilation; nan if none


def write_saliency_maps(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    params: dict,
    *,
    weights_sha256: str,
    batch_size: int = 4,
    progress: bool = True,
) -> SaliencyRun:
    """Writes ``<out>/<image stem>.npy`` for every image in ``data_dir``; resumable.

    The manifest ``<out>/image_ids.json`` (ids = file stems in `image_paths` order, their
    (H, W), each image's sha256, the weights' sha256 and `SALIENCY_VERSION`) is written first.
    A map already in ``out`` is kept only if the previous manifest records the same image sha256
    for it (each file is written atomically, so a present file is complete); maps of changed
    images, or found without such a record, are deleted before the new manifest is written and
    then computed again. Every image is decoded in full (a truncated or damaged file
    fails here) before anything is written.

    Args:
      data_dir: a folder of images, or a folder holding ``images/``.
      out: output folder.
      params: converted TranSalNet-Dense parameters (`load_transalnet`).
      weights_sha256: the digest of the converted tensors (``load_transalnet(...)[1]
        ['tensors_sha256']``, verified on load); resuming into a folder made with other
        weights (also a re-conversion) is refused.
      batch_size: images per forward pass; the last batch is padded, so one compilation serves
        the whole run.
      progress: show a tqdm bar.

    Returns:
      A `SaliencyRun`.

    Raises:
      FileNotFoundError, ValueError: no images, an unreadable image, or ``out`` holding maps
        from other weights or another version of this module (each naming the file).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    paths = image_paths(data_dir)
    out = Path(out).expanduser()
    ids = [p.stem for p in paths]
    shapes = image_shapes(paths)  # every image decoded before any map is written
    hashes = {p.stem: file_sha256(p) for p in paths}
    made_by = {"weights_sha256": weights_sha256, "saliency_version": SALIENCY_VERSION}
    previous_hashes = {}
    if (out / MANIFEST).is_file():
        previous = preflight.read_json(out / MANIFEST, "a saliency manifest")
        try:
            previous_hashes = dict(previous.get("image_sha256", {}))
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(f"{out / MANIFEST}: malformed saliency manifest ({e})") from e
        found = {k: previous.get(k) for k in made_by}
        if found != made_by:
            raise ValueError(f"{out / MANIFEST}: the maps in {out} were made with {found}, not "
                             f"{made_by}; use another --out or delete that folder")
    # A stale map goes before the manifest vouches for its image, so that a run interrupted
    # in between cannot leave it looking current.
    changed = [i for i in ids
               if (out / f"{i}.npy").is_file() and previous_hashes.get(i) != hashes[i]]
    for i in changed:
        (out / f"{i}.npy").unlink()
    storage.write_json(out / MANIFEST, {
        "image_ids": ids,
        "shapes": {i: list(shapes[i]) for i in ids},
        "image_sha256": hashes,
        "model": "transalnet_dense",
        **made_by,
        "values": "float32 in [0, 1]: the release's 8-bit map / 255",
    })

    todo = [p for p in paths if not (out / f"{p.stem}.npy").is_file()]
    compile_s, run_s = 0.0, 0.0
    bar = tqdm(total=len(todo), desc="saliency", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        t0 = time.perf_counter()
        pixels = [np.asarray(image_io.open_rgb(p)) for p in batch]
        inputs = np.stack([preprocess(x) for x in pixels])
        padded = np.concatenate([inputs, np.repeat(inputs[-1:], batch_size - len(batch), 0)])
        if start == 0:  # compile once, timed apart from the per-image cost
            t_compile = time.perf_counter()
            compiled_model(batch_size)
            compile_s = time.perf_counter() - t_compile
            t0 += compile_s
        saliency = np.asarray(predict(params, padded)[0])
        for path, x, sal in zip(batch, pixels, saliency[: len(batch)], strict=True):  # padded
            storage.write_npy(out / f"{path.stem}.npy", postprocess(sal, x.shape[:2]))
        run_s += time.perf_counter() - t0
        bar.update(len(batch))
    bar.close()
    computed = [p.stem for p in todo]
    return SaliencyRun(
        image_ids=ids, shapes=[shapes[i] for i in ids], computed=computed,
        skipped=[i for i in ids if i not in set(computed)], changed=changed,
        compile_seconds=compile_s,
        seconds_per_image=run_s / len(todo) if todo else float("nan"))


MAP_FORMATS = (".npy", ".png")
FORMATS_HELP = ("a saliency map is <image stem>.npy (a 2-D array [H, W] of real numbers, as "
                "numpy.save writes it) or <image stem>.png (greyscale, 1-, 8- or 16-bit)")


def _read_png(path: Path) -> np.ndarray:
    """A greyscale PNG as ``[H, W]`` float32 in [0, 1]; alpha is ignored.

    Accepts 1-bit, 8-bit and 16-bit grey (with or without alpha), and palette or RGB(A) images
    whose colour channels are all equal (grey stored as colour).
    """
    with PIL.Image.open(path) as img:
        img.load()
        if img.format != "PNG":
            raise ValueError(f"{path}: a {img.format} image named .png; {FORMATS_HELP}")
        mode = img.mode
        if mode == "P":  # palette indices are not grey levels: look the colours up
            img = img.convert("RGB")
        values = np.asarray(img)
    if mode == "1":
        return values.astype(np.float32)
    if mode == "LA":
        values, mode = values[..., 0], "L"
    if mode == "L":
        return values.astype(np.float32) / 255
    if mode in ("I;16", "I;16L", "I;16B", "I"):
        return values.astype(np.float32) / 65535
    if mode in ("P", "RGB", "RGBA"):
        if (values[..., 1:3] == values[..., :1]).all():
            return values[..., 0].astype(np.float32) / 255
        raise ValueError(f"{path}: a saliency PNG must be greyscale, but this {mode} image has "
                         "differing colour channels")
    raise ValueError(f"{path}: a saliency PNG must be greyscale (1-, 8- or 16-bit), got PIL mode "
                     f"{mode!r}")


def map_dtype(dtype: np.dtype) -> type:
    """The float type a stored map is compared in: its values as given, never rounded.

    float64 and integers wider than 16 bits stay exact in float64; float32 and narrower
    types (float16, 8- and 16-bit integers, bool) are exact in float32.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize <= 4 or dtype.kind in "biu" and dtype.itemsize <= 2:
        return np.float32
    return np.float64


def _read_npy(path: Path) -> np.ndarray:
    sal = preflight.read_npy(path, "a saliency map (.npy)")
    if not np.issubdtype(sal.dtype, np.number) and sal.dtype != np.bool_ or np.iscomplexobj(sal):
        raise ValueError(f"{path}: dtype {sal.dtype}, expected real numbers")
    return sal.astype(map_dtype(sal.dtype))


def read_map(path: str | os.PathLike) -> np.ndarray:
    """One saliency map file, ``.npy`` or greyscale ``.png``, as ``[...]`` floats.

    ``.npy`` values keep their precision (`map_dtype`: float64 stays float64); a PNG is
    scaled to [0, 1] in float32. Shape and finiteness are the caller's to check.

    Raises:
      ValueError: one line naming the file and what it looks like when it cannot be parsed
        (an empty file, an ``.npz`` archive or a JPEG under a map's name, ...).
    """
    path = Path(path)
    if path.suffix not in MAP_FORMATS:
        raise ValueError(f"{path}: not a saliency-map format; {FORMATS_HELP}")
    if path.suffix == ".npy":
        return _read_npy(path)
    return preflight.read_user_file(path, "a saliency map (.png)", _read_png)


def other_formats(folder: Path, stem: str) -> list[str]:
    """Files ``<stem>.<ext>`` whose extension is not read as a map (e.g. ``.jpg``), by name."""
    return sorted(p.name for p in folder.glob(f"{glob.escape(stem)}.*")
                  if p.suffix not in MAP_FORMATS and p.stem == stem)


def load_saliency_maps(
    folder: str | os.PathLike, image_ids: Sequence[str], shapes: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """Reads one saliency map per image: ``<folder>/<stem>.npy`` or ``<folder>/<stem>.png``.

    Accepts the maps `write_saliency_maps` writes, or any the user brings: ``.npy`` arrays
    ``[H, W]`` of finite values (used as they are, in their own precision: float64 stays
    float64, see `map_dtype`), or greyscale PNGs (scaled to [0, 1]). Other files in the folder
    are ignored; a ``<stem>.<ext>`` of another format is named in the error for a missing map.

    Args:
      folder: the folder of maps.
      image_ids: the images, in dataset order: file stems (``Dataset.image_stems``, the
        manifest's ids) or file names (``Dataset.image_ids``); a trailing image suffix
        (`IMAGE_SUFFIXES`, any case) is removed to get the stem, so pass file names when the
        stems themselves end in one.
      shapes: each image's ``(H, W)``; a map must have exactly that shape.

    Returns:
      ``[H, W]`` float32 or float64 maps, in the order of ``image_ids``.

    Raises:
      FileNotFoundError: the folder, or a map, is missing (all missing ids are listed, with
        the formats read and any file of another format found under the map's name).
      ValueError: two images with one stem, a map with two candidate files, the wrong shape,
        non-finite values, an unusable PNG mode, or a file that cannot be parsed, naming it.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such saliency-map folder")
    if len(image_ids) != len(shapes):
        raise ValueError(f"{len(image_ids)} image ids but {len(shapes)} shapes")
    found, missing, stems = [], [], {}
    for image_id in image_ids:
        image_id = str(image_id)
        suffix = Path(image_id).suffix
        stem = image_id[:-len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else image_id
        if stem in stems:
            raise ValueError(f"images {stems[stem]!r} and {image_id!r} share the name {stem!r}, "
                             "so they cannot both have a map in one folder; rename one")
        stems[stem] = image_id
        candidates = [folder / f"{stem}{s}" for s in MAP_FORMATS]
        present = [p for p in candidates if p.is_file()]
        if not present:
            others = other_formats(folder, stem)
            missing.append(image_id + (f" (found {', '.join(others)}: a format not read)"
                                       if others else ""))
        elif len(present) > 1:
            raise ValueError(f"{present[0]} and {present[1]}: two saliency maps for image "
                             f"{image_id!r}; keep one")
        else:
            found.append(present[0])
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10
                                           else "")
        raise FileNotFoundError(f"{folder}: no saliency map for {len(missing)} image(s): "
                                f"{shown}; {FORMATS_HELP}")
    maps = []
    for path, shape in zip(found, shapes, strict=True):
        shape = tuple(int(s) for s in shape)
        sal = read_map(path)
        if sal.shape != shape:
            swapped = " (height and width swapped?)" if sal.shape == shape[::-1] else ""
            raise ValueError(f"{path}: saliency map of shape {sal.shape}, but the image is "
                             f"{shape} (H, W){swapped}")
        if not np.isfinite(sal).all():
            raise ValueError(f"{path}: saliency map has NaN or infinite values")
        maps.append(sal)
    return maps


def read_manifest(out: str | os.PathLike) -> tuple[list[str], list[tuple[int, int]]]:
    """The ``(image_ids, shapes)`` recorded by `write_saliency_maps` in ``<out>/image_ids.json``.

    Raises:
      FileNotFoundError: no manifest there.
      ValueError: the manifest is not valid JSON or lacks ``image_ids``/``shapes``.
    """
    path = Path(out).expanduser() / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saliency manifest; run python -m experiments."
                                "saliency first")
    manifest = preflight.read_json(path, "a saliency manifest")
    try:
        ids = [str(i) for i in manifest["image_ids"]]
        shapes = [tuple(int(s) for s in manifest["shapes"][i]) for i in ids]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed saliency manifest ({type(e).__name__}: {e})") from e
    return ids, shapes
