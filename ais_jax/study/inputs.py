"""Datasets and models of a study, fully checked before anything is written."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ais_jax.data import datasets as ds_lib
from ais_jax.data.images import open_rgb, resized_shape
from ais_jax.models.registry import Architecture
from ais_jax.study.config import StudyConfig
from ais_jax.weights import load_model


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model's label, parameters, architecture and the identity of its checkpoint.

    Attributes:
      label: the name in outputs (``<out>/<label>/...``, table rows).
      source: the model name or file it was loaded from.
      params: ``{'trunk': ..., 'head': ...}``.
      checkpoint_sha256: the sha256 of the checkpoint the weights were converted from.
      metadata: the converted file's metadata.
      arch: the registered architecture (trunk, pool, head family, M).
    """

    label: str
    source: str
    params: Any
    checkpoint_sha256: str
    metadata: dict
    arch: Architecture


def layout_help(root: Path) -> str:
    """The two data layouts a study accepts, for error messages."""
    return (
        "Expected either the Peterson et al. (2018) layout\n"
        f"  {root}/<category>/images/*.jpg|png   and   {root}/<category>/sim_judgements/*.mat\n"
        "(categories: animals, automobiles, fruits, furniture, various, vegetables) or the "
        "release as distributed (each category's one image folder and one n x n .mat variable "
        "are found in its folder tree), or a plain dataset: --data_dir=<folder of images> "
        "--matrix=<n x n .npy, .csv, .mat or rsatoolbox .hdf5> [--kind=similarity|dissimilarity]."
    )


def dataset_key(ds: ds_lib.Dataset) -> str:
    """A plain dataset's output-folder name (its name without path separators)."""
    return ds.name.replace("/", "_").replace("\\", "_")


def load_datasets(config: StudyConfig) -> list[tuple[str, ds_lib.Dataset]]:
    """The datasets a run will use, fully checked (matrix, images) before any output exists.

    Args:
      config: the run (``data_dir``, ``matrix``, ``kind``, ``name``, ``datasets``,
        ``symmetrize``, ``image_size`` and `StudyConfig.min_images` are used).

    Returns:
      ``(key, Dataset)`` pairs: the key names output folders and finds the paper's numbers
      (the Peterson category folder, e.g. ``'automobiles'``; a plain dataset's name).

    Raises:
      FileNotFoundError: missing data directory, category or file (the message lists what
        exists and the layout expected).
      ValueError: a bad matrix (size, NaN), an unreadable image, too few images or images of
        different aspect ratios, naming the file.
    """
    root = Path(config.data_dir).expanduser() if config.data is None else None
    if config.data is not None:  # tfds:NAME/CONFIG[:split]: TensorFlow is imported only there
        found = [_tfds_dataset(config)]
    elif not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist.\n{layout_help(root)}")
    elif config.matrix is not None:
        if config.datasets:
            raise ValueError("--datasets selects Peterson categories; it cannot be combined "
                             "with --matrix (a plain dataset)")
        ds = ds_lib.load_plain(root, config.matrix, kind=config.kind,
                               symmetrize=config.symmetrize, name=config.name)
        found = [(dataset_key(ds), ds)]
    else:
        # load_peterson finds each category's folder (also nested or aliased, as in the
        # release) and says what the root holds when one is missing.
        wanted = list(config.datasets) if config.datasets else None
        try:
            loaded = ds_lib.load_peterson(root, wanted, symmetrize=config.symmetrize)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}\n{layout_help(root)}") from e
        found = list(loaded.items())
    # The loaders checked the matrices (size, finite, symmetric); here, what the run needs too.
    fewest, reason = config.min_images()
    for _, ds in found:
        n = len(ds.image_paths)
        if n < fewest:
            raise ValueError(f"dataset {ds.name!r} ({ds.image_paths[0].parent}) has {n} "
                             f"images: too few for {reason}")
        shapes = {}
        for p in tqdm(ds.image_paths, desc=f"checking {ds.name} images", unit="img",
                      disable=n < 64):
            img = open_rgb(p)  # raises ValueError naming an unreadable file
            shapes.setdefault(resized_shape(img.height, img.width, config.image_size), p)
        if len(shapes) > 1:
            (s0, p0), (s1, p1) = list(shapes.items())[:2]
            raise ValueError(f"{p1}: resized to {s1} (H, W) but {p0} to {s0}; the images of a "
                             "dataset must share one aspect ratio (crop them first)")
    return found


def _tfds_dataset(config: StudyConfig) -> tuple[str, ds_lib.Dataset]:
    """``config.data``'s TFDS dataset (``data_dir``: TFDS's data dir); see docs/tfds.md."""
    from ais_jax.data import tfds  # noqa: PLC0415 (the optional 'tfds' extra)

    if config.matrix is not None or config.kind is not None or config.datasets:
        raise ValueError(f"--data={config.data} carries its matrix and kind: it cannot be "
                         "combined with --matrix, --kind or --datasets")
    return tfds.load_tfds(config.data, config.data_dir, symmetrize=config.symmetrize,
                          name=config.name)


def load_models(config: StudyConfig) -> list[LoadedModel]:
    """Loads every model's converted weights (MissingWeightsError says how to make them)."""
    models = []
    for label, source in config.models:
        params, metadata, arch = load_model(source)
        models.append(LoadedModel(label, str(source), params, metadata["source_sha256"],
                                  dict(metadata), arch))
    return models
