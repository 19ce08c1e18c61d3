"""TensorFlow Datasets as a data source: ``tfds:NAME/CONFIG[:split]`` -> a `Dataset`.

The builders in `ais_jax.data.tfds_builders` (``peterson_similarity``, ``ais_plain``) store,
per image, its encoded bytes exactly as in the folder they were built from, its file name
(``image_id``) and its row of the human matrix; the whole matrix, its kind and its source file
are in the dataset's metadata (docs/tfds.md). `load_tfds` reads such a dataset back into the
`Dataset` the folder loaders give:

* the stored bytes are written once, unchanged, under ``$AIS_JAX_CACHE/tfds/...`` with their
  file names, so every reader (`open_rgb`, the fingerprint, the saliency tools) sees the same
  files as in the original folder: the inputs are bit-identical and so is the fingerprint;
* the matrix from the metadata (checked against the per-example rows) goes through
  `validate_matrix` and the same sign rule as a folder's.

TensorFlow is imported only by `require` (the ``tfds`` extra); this module imports without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from ais_jax import storage
from ais_jax.data.datasets import KINDS, Dataset, validate_matrix

PREFIX = "tfds:"
EXTRA = "pip install -e '.[tfds]'"
BUILDERS_MODULE = "ais_jax.data.tfds_builders"
FORMAT = 1  # metadata["ais_jax_format"] of the builders' datasets
_SPEC_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)/(?P<config>[^/:\s]+)(?::(?P<split>[^/:\s]+))?$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


class MissingTfdsError(ImportError):
    """tensorflow-datasets (the ``tfds`` extra) is not installed."""


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """A parsed ``tfds:NAME/CONFIG[:split]``."""

    name: str
    config: str
    split: str = "train"

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}/{self.config}:{self.split}"


def parse_spec(spec: str) -> TfdsSpec:
    """Parses ``tfds:NAME/CONFIG[:split]`` (the split defaults to ``train``; no slices).

    Raises:
      ValueError: anything else, naming the flag and the accepted form.
    """
    body = spec[len(PREFIX):] if spec.startswith(PREFIX) else None
    match = _SPEC_RE.match(body or "")
    if match is None:
        hint = " (a slice such as train[:10] would cut the matrix: not supported)" \
            if "[" in spec else ""
        raise ValueError(f"--data={spec}: expected tfds:NAME/CONFIG[:split], e.g. "
                         f"tfds:peterson_similarity/animals{hint}")
    return TfdsSpec(match["name"], match["config"], match["split"] or "train")


def build_command(spec: TfdsSpec, data_dir: str | os.PathLike | None, *,
                  tfds_cli: bool = False) -> str:
    """The command that builds the dataset ``spec`` names: ``python -m experiments.tfds_build``
    or (``tfds_cli``) TFDS's own ``tfds build``, whose CLI (TFDS 4.9) also needs apache-beam."""
    where = f" --data_dir={data_dir}" if data_dir is not None else ""
    plain = spec.name == "ais_plain"
    manual = "--manual_dir=<" + ("folder of the images and matrix" if plain else
                                 "the Peterson release") + ">"
    if not tfds_cli:
        extra = " --matrix=<matrix file> --kind=similarity|dissimilarity" if plain else ""
        return f"python -m experiments.tfds_build {spec.name}/{spec.config} {manual}{extra}{where}"
    config = f"--config={spec.config}"
    if plain:
        config = ("--config='{\"name\": \"" + spec.config + "\", \"matrix\": \"<matrix file>\", "
                  "\"kind\": \"similarity|dissimilarity\"}'")
    return f"tfds build {spec.name} --imports={BUILDERS_MODULE} {config} {manual}{where}"


def require():
    """The `tensorflow_datasets` module; `MissingTfdsError` naming the extra when it is absent."""
    try:
        import tensorflow_datasets  # noqa: PLC0415 (optional extra, imported on use)
    except ImportError as e:
        raise MissingTfdsError(
            f"--data=tfds:... needs TensorFlow Datasets, which is not installed (the optional "
            f"'tfds' extra): {EXTRA}  ({e})") from e
    return tensorflow_datasets


def default_data_dir() -> Path:
    """TFDS's own default data dir (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)."""
    return Path(require().core.constants.DATA_DIR).expanduser()


def _builder_dir(spec: TfdsSpec, root: Path) -> Path:
    """``<root>/<name>/<config>/<newest version>``, or FileNotFoundError with the command."""
    config_dir = root / spec.name / spec.config
    versions = []
    if config_dir.is_dir():
        versions = sorted((p for p in config_dir.iterdir()
                           if _VERSION_RE.match(p.name) and (p / "dataset_info.json").is_file()),
                          key=lambda p: tuple(int(x) for x in p.name.split(".")))
    if not versions:
        built = sorted({f"{p.parent.parent.parent.name}/{p.parent.parent.name}"
                        for p in root.glob("*/*/*/dataset_info.json")}) if root.is_dir() else []
        found = f" (it holds: {', '.join(built)})" if built else " (it holds no dataset)"
        raise FileNotFoundError(
            f"--data={spec}: no TFDS dataset {spec.name}/{spec.config} in {root}{found}. "
            f"Build it with:\n  {build_command(spec, root)}\nor TFDS's own (its CLI also "
            f"needs apache-beam):\n  {build_command(spec, root, tfds_cli=True)}\n(docs/tfds.md)")
    return versions[-1]


def _read_examples(tfds, builder, spec: TfdsSpec) -> list[tuple[str, bytes, np.ndarray]]:
    """``(image_id, encoded bytes, matrix row)`` of every example of the split, as stored."""
    splits = sorted(builder.info.splits)
    if spec.split not in splits:
        raise ValueError(f"--data={spec}: no split {spec.split!r} (the dataset has: "
                         f"{', '.join(splits)})")
    data = builder.as_dataset(split=spec.split, shuffle_files=False,
                              decoders={"image": tfds.decode.SkipDecoding()})
    return [(ex["image_id"].decode(), bytes(ex["image"]), np.asarray(ex["similarity_row"]))
            for ex in tfds.as_numpy(data)]


def _metadata(builder, spec: TfdsSpec, builder_dir: Path) -> dict:
    meta = dict(builder.info.metadata or {})
    if meta.get("ais_jax_format") != FORMAT:
        raise ValueError(f"--data={spec}: {builder_dir} was not built by {BUILDERS_MODULE} "
                         f"(no ais_jax_format={FORMAT} in its metadata)")
    if meta.get("kind") not in KINDS:
        raise ValueError(f"--data={spec}: metadata kind {meta.get('kind')!r} is not one of {KINDS}")
    return meta


def _check_ids(ids: list[str], spec: TfdsSpec) -> None:
    bad = [i for i in ids if not i or i.startswith(".") or "/" in i or "\\" in i or "\0" in i]
    if bad:
        raise ValueError(f"--data={spec}: image ids that are not plain file names: {bad[:5]}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"--data={spec}: repeated image ids")


def _materialize(examples: list[tuple[str, bytes, np.ndarray]], folder: Path) -> list[Path]:
    """Writes each example's bytes as ``<folder>/<image_id>`` once (atomically, whole folder)."""
    paths = [folder / i for i, _, _ in examples]
    if folder.is_dir() and all(p.is_file() and p.read_bytes() == b
                               for p, (_, b, _) in zip(paths, examples, strict=True)):
        return paths
    tmp = folder.parent / f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    with storage.writing(tmp):
        tmp.mkdir(parents=True)
        try:
            for image_id, content, _ in examples:
                (tmp / image_id).write_bytes(content)
            if folder.exists():
                shutil.rmtree(folder)  # an older, different or partial copy
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return paths


def load_tfds(spec: str, data_dir: str | os.PathLike | None = None, *,
              symmetrize: bool = False, name: str | None = None) -> tuple[str, Dataset]:
    """Loads ``tfds:NAME/CONFIG[:split]`` built by `ais_jax.data.tfds_builders`.

    Args:
      spec: ``tfds:NAME/CONFIG[:split]`` (split: ``train``, the only one the builders make).
      data_dir: TFDS's data dir (None: TFDS's default, ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      symmetrize: use (H + H^T) / 2 instead of rejecting an asymmetric matrix.
      name: display name (default: the one the folder loader gave when it was built).

    Returns:
      ``(key, Dataset)``: the key names output folders as for a folder (the Peterson category,
      e.g. ``'animals'``; a plain dataset's name). The `Dataset`'s image paths are the stored
      bytes under ``$AIS_JAX_CACHE/tfds/``; its matrix path is the source file recorded at build.

    Raises:
      MissingTfdsError: the ``tfds`` extra is not installed.
      FileNotFoundError: the dataset is not built in ``data_dir`` (the message gives the
        ``tfds build`` command).
      ValueError: a bad spec or split, metadata not written by these builders, a matrix that
        disagrees with the rows or fails `validate_matrix` (the message names the spec).
    """
    parsed = parse_spec(spec)
    tfds = require()
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    builder_dir = _builder_dir(parsed, root)
    builder = tfds.builder_from_directory(builder_dir)
    meta = _metadata(builder, parsed, builder_dir)
    examples = sorted(_read_examples(tfds, builder, parsed), key=lambda e: e[0])
    ids = [e[0] for e in examples]
    _check_ids(ids, parsed)
    source = f"--data={parsed} (matrix of {meta.get('source_file')})"
    matrix = np.asarray(meta["matrix"], dtype=np.float64)
    rows = np.stack([e[2] for e in examples]) if examples else np.zeros((0, 0))
    if ids != list(meta.get("image_ids", [])) or rows.shape != matrix.shape \
            or not np.array_equal(rows, matrix, equal_nan=True):
        raise ValueError(f"{source}: the examples' image ids and rows disagree with the "
                         "metadata's matrix; rebuild the dataset")
    digest = hashlib.sha256()
    for image_id, content, _ in examples:
        digest.update(f"{image_id}\0{len(content)}\0".encode() + content)
    folder = (storage.cache_dir() / "tfds" / parsed.name / parsed.config / builder_dir.name
              / parsed.split / digest.hexdigest()[:16])
    paths = _materialize(examples, folder)
    h, asymmetry = validate_matrix(matrix, len(paths), source=source, symmetrize=symmetrize,
                                   images=paths)
    kind = meta["kind"]
    if kind == "dissimilarity":
        h = -h  # SPEC §3, as for a folder
    origin = {**meta.get("origin", {}),
              "tfds": {"spec": str(parsed), "builder_dir": str(builder_dir),
                       "version": builder_dir.name, "images": str(folder)}}
    ds = Dataset(name or meta["name"], paths, h, meta["source_file"], kind, asymmetry,
                 symmetrize, origin)
    return meta["key"], ds
