"""Stage 5, exports to other tools: rsatoolbox RDM files out (`rsatoolbox`).

Reading RDM files in is `ais_jax.data.rdm_files`'s. May import everything below `report`
(`fitting`, `stats`, `explain`, `engine`, `data`, `resume`, `storage`); never `study` or
`report`.
"""
