"""``ais_plain``: any image folder + n x n matrix + declared kind (as ``--matrix``/``--kind``).

Each dataset is a config given as JSON, as the folder loader's flags::

    tfds build ais_plain --imports=ais_jax.data.tfds_builders --manual_dir=DIR \\
        --config='{"name": "mine", "matrix": "judgements.csv", "kind": "dissimilarity"}'

``images`` (default ``images``) and ``matrix`` are relative to the manual dir (or absolute).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from ais_jax.data.datasets import load_plain
from ais_jax.data.tfds_builders import examples


@dataclasses.dataclass(eq=False)
class AisPlainConfig(tfds.core.BuilderConfig):
    """One plain dataset: its image folder, matrix file and the matrix's kind."""

    images: str = "images"
    matrix: str = ""
    kind: str = ""


class AisPlain(tfds.core.GeneratorBasedBuilder):
    """An image folder and its human (dis)similarity matrix, read as ais_jax's load_plain."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Encoded images as stored, image ids, matrix rows."}
    # TFDS builds a JSON --config only for a builder with configs: this one explains itself.
    BUILDER_CONFIGS = [AisPlainConfig(name="example", description="a placeholder: pass "
                                      "--config as JSON with name, matrix and kind")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put your images and matrix in the manual dir and name them in the config:
    --config='{"name": "mine", "images": "images", "matrix": "judgements.csv",
    "kind": "similarity"}' (kind: similarity or dissimilarity, never guessed; rows follow the
    sorted image file names; .npy, .csv, .mat or an rsatoolbox RDMs file, as load_plain).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=examples.features(),
                                              metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        if not config.matrix or not config.kind:
            raise ValueError(f"ais_plain config {config.name!r}: give the matrix file and its "
                             "kind, e.g. --config='{\"name\": \"mine\", \"matrix\": "
                             "\"judgements.csv\", \"kind\": \"similarity\"}'")
        manual = Path(dl_manager.manual_dir)
        ds = load_plain(manual / config.images, manual / config.matrix,
                        kind=config.kind, name=config.name)
        self.info.metadata.update(examples.metadata(ds, key=config.name))
        return {"train": self._generate_examples(ds)}

    def _generate_examples(self, ds):
        yield from examples.generate(ds)
