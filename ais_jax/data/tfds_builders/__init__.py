"""TFDS builders for the project's datasets (the optional ``tfds`` extra; imports TensorFlow).

Importing this package registers ``peterson_similarity`` (one config per Peterson category)
and ``ais_plain`` (any image folder + matrix + declared kind) with TFDS, e.g. for
``tfds build peterson_similarity --imports=ais_jax.data.tfds_builders --config=animals
--manual_dir=<Peterson release>``. Nothing else in the package imports it (docs/tfds.md).
"""

from ais_jax.data.tfds_builders.ais_plain import AisPlain, AisPlainConfig
from ais_jax.data.tfds_builders.peterson_similarity import PetersonSimilarity

__all__ = ["AisPlain", "AisPlainConfig", "PetersonSimilarity"]
