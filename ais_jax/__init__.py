"""ais_jax: Alignment Importance Score (AIS) heatmaps for VGG-16 in JAX/Flax.

The pipeline, one module per stage:
images (`ais_jax.data`) -> trunk activations (`ais_jax.models.vgg16`) ->
ablation embeddings (`ais_jax.ablation`) -> AIS (`ais_jax.ais`) ->
selection / heatmaps -> figures.
"""

__version__ = "0.1.0"
