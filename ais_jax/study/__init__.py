"""Stage 7, the study: one runner over models x datasets that every aim plugs into.

The runner (`runner`: load, validate, cache, resume, run.json) with its config, inputs and
items; the three aims (`aim1`, `aim2`, `aim3`), their synthetic demos (`aim1_demo`,
`aim2_demo`, `aim3_demo`), the full-scale rehearsal (`rehearsal`) and the benchmark (`bench`).

The top of the library: may import any of it. Only `experiments/` imports it.
"""
