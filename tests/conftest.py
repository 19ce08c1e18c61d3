"""Strict numerics for every test: full float32 matmuls, no silent rank promotion."""

import jax

jax.config.update("jax_default_matmul_precision", "float32")
jax.config.update("jax_numpy_rank_promotion", "raise")
