"""``peterson_similarity``: the Peterson et al. (2018) categories, one TFDS config each."""

from __future__ import annotations

import tensorflow_datasets as tfds

from ais_jax.data.datasets import PETERSON_CATEGORIES, load_peterson
from ais_jax.data.tfds_builders import examples


class PetersonSimilarity(tfds.core.GeneratorBasedBuilder):
    """Images and human similarity judgements of Peterson, Abbott & Griffiths (2018)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Encoded images as stored, image ids, similarity rows."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=c, description=f"the {c} category")
                       for c in PETERSON_CATEGORIES]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    The images and similarity judgements of Peterson, Abbott & Griffiths (2018, Cognitive
    Science 42(8)) are shared by their authors; they are not downloaded here. Put the release
    in the manual dir (--manual_dir) in either layout that ais_jax's folder loader reads:
    <manual_dir>/<category>/images/* with <manual_dir>/<category>/sim_judgements/*.mat (a
    variable whose name contains 'sim'), or the release's own folder tree as distributed
    (each category's one image folder and one n x n .mat variable are found in its tree;
    docs/weights_and_data.md of ais_jax).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=examples.features(), metadata=tfds.core.MetadataDict(),
            citation=examples.CITATION_PETERSON)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        category = self.builder_config.name
        ds = load_peterson(dl_manager.manual_dir, category)[category]
        self.info.metadata.update(examples.metadata(ds, key=category))
        return {"train": self._generate_examples(ds)}

    def _generate_examples(self, ds):
        yield from examples.generate(ds)
