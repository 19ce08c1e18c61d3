"""What both builders store: features, metadata and examples of a loaded `Dataset`.

Per example: ``image`` (the file's encoded bytes, unchanged: TFDS's Image feature stores bytes
as given), ``image_id`` (the file name) and ``similarity_row`` (the image's row of the matrix
as the file holds it, in sorted file-name order). The metadata holds the whole matrix, its
kind and source file, what `ais_jax.data.tfds.load_tfds` needs to give back the same `Dataset`.
The rows are stored as raw float64 bytes (a tf.train.Example float list would round them to
float32).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from ais_jax.data.datasets import Dataset
from ais_jax.data.tfds import FORMAT

CITATION_PETERSON = """@article{peterson2018evaluating,
  title={Evaluating (and improving) the correspondence between deep neural networks and human
         representations},
  author={Peterson, Joshua C. and Abbott, Joshua T. and Griffiths, Thomas L.},
  journal={Cognitive Science},
  volume={42},
  number={8},
  pages={2648--2669},
  year={2018}
}"""


def features() -> tfds.features.FeaturesDict:
    """The features of one example (the row's length is the number of images)."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(
            shape=(None, None, 3),
            doc="the image file's bytes as stored (ais_jax decodes them with PIL)"),
        "image_id": tfds.features.Text(doc="the image's file name"),
        "similarity_row": tfds.features.Tensor(
            shape=(None,), dtype=np.float64, encoding=tfds.features.Encoding.BYTES,
            doc="its row of the human matrix (kind in the metadata), sorted file-name order"),
    })


def file_matrix(ds: Dataset) -> np.ndarray:
    """The matrix in the file's own sign (a dissimilarity is stored as one), validated."""
    return -ds.similarity if ds.kind == "dissimilarity" else np.array(ds.similarity)


def metadata(ds: Dataset, key: str) -> dict:
    """The dataset-level record: the whole matrix, its kind and source, and how it was found."""
    return {
        "ais_jax_format": FORMAT,
        "key": key,
        "name": ds.name,
        "kind": ds.kind,
        "source_file": str(ds.matrix_path),
        "image_ids": list(ds.image_ids),
        "matrix": file_matrix(ds).tolist(),
        "asymmetry": ds.asymmetry,
        "origin": dict(ds.origin),
    }


def generate(ds: Dataset) -> Iterator[tuple[str, dict]]:
    """``(key, example)`` per image, keyed by its file name."""
    matrix = file_matrix(ds)
    for i, path in enumerate(ds.image_paths):
        yield path.name, {"image": path.read_bytes(), "image_id": path.name,
                          "similarity_row": matrix[i]}
