"""One (model, dataset) of a study and its cached inputs, computed on first use.

The trunk activations and ablation similarities depend only on the weights, the images, the
preprocessing and the input size (`ais_jax.engine.activations`), so every aim reads the same cache
entries: Aim 2 run after Aim 1 on the same data recomputes neither.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ais_jax.data.datasets import Dataset
from ais_jax.engine import activations
from ais_jax.engine.ablation import full_embeddings
from ais_jax.study.config import StudyConfig
from ais_jax.study.inputs import LoadedModel


@dataclasses.dataclass(eq=False)
class StudyItem:
    """One model on one dataset: identity, output folder, and lazily cached arrays.

    Attributes:
      model: the loaded checkpoint.
      key: the dataset's key (output folder name; Peterson category or plain name).
      dataset: the dataset (images in matrix order, human similarity).
      config: the run's configuration.
    """

    model: LoadedModel
    key: str
    dataset: Dataset
    config: StudyConfig

    @property
    def out(self) -> Path:
        """This item's output folder, ``<out>/<model>/<dataset key>``."""
        return Path(self.config.out) / self.model.label / self.key

    @property
    def tag(self) -> str:
        """``'<model>/<dataset key>'``, for progress bars and messages."""
        return f"{self.model.label}/{self.key}"

    @property
    def human(self) -> np.ndarray:
        """``[n, n]`` float64 human similarity (read-only)."""
        return np.asarray(self.dataset.similarity, np.float64)

    @property
    def image_ids(self) -> tuple[str, ...]:
        """Image file names in matrix order (ids beside every per-image output)."""
        return self.dataset.image_ids

    @property
    def weights_sha256(self) -> str:
        """The verified digest of the model's tensors: the key of everything computed from
        them (not the source checkpoint's sha256, so re-converted or damaged weights never
        reuse entries of other tensors)."""
        return self.model.metadata["tensors_sha256"]

    @functools.cached_property
    def activations(self) -> activations.Cached:
        """Trunk activations, value ``[n, h, w, M]`` float32 at the model's map grid, from
        the cache when present."""
        return activations.cached_activations(
            self.model.params["trunk"], self.weights_sha256, self.dataset.image_paths,
            image_size=self.config.image_size, batch_size=self.config.batch_size,
            desc=f"{self.tag} trunk", arch=self.model.arch)

    @functools.cached_property
    def blocks(self) -> np.ndarray:
        """``[n, M, B]`` the head's per-map inputs of the activations (VGG-16: ``[n, 512, 49]``
        pooled fc6 inputs)."""
        return np.asarray(activations.blocks_from_acts(self.activations.value,
                                                       self.model.arch))

    @functools.cached_property
    def similarities(self) -> activations.Cached:
        """`AblationSimilarities` of all images (full, global and per-image), cached."""
        return activations.cached_similarities(
            self.model.params["head"], self.blocks, self.activations.path.stem,
            chunk_maps=self.config.chunk_maps)

    @functools.cached_property
    def logits(self) -> np.ndarray:
        """``[n, classes]`` float32 logits of the unablated images (cheap; not cached)."""
        _, logits = full_embeddings(self.model.params["head"], jnp.asarray(self.blocks))
        return np.asarray(logits)

    @property
    def activations_key(self) -> str:
        """The activations' cache key (weights' tensor digest, images, preprocessing, size)."""
        return self.activations.path.stem

    def cache_report(self) -> dict:
        """``{'activations': 'hit'|'computed'|'unused', 'similarities': ...}`` so far."""
        def state(name: str) -> str:
            cached = self.__dict__.get(name)
            return "unused" if cached is None else ("hit" if cached.hit else "computed")
        return {"activations": state("activations"), "similarities": state("similarities")}

