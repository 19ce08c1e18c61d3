"""One runner over models x datasets that every aim plugs into (see `ais_jax.study.runner`)."""
