"""Thin command-line entry points: flags -> config -> one `ais_jax.study` call -> print.

`cli` holds the flags that every aim shares. No math lives here.
"""

