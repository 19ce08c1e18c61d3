"""Stage 3, the AIS engine: pure array kernels, no files except the activation cache.

trunk activations (`activations`) -> ablated similarities (`ablation`, `active_set`) ->
correlations and scores (`similarity`) -> AIS (`ais`: `global_ais`, `per_image_ais`) ->
map selection (`selection`), with cross-validation folds (`crossval`), device sharding
(`sharding`) and the matmul rate the benchmarks quote (`throughput`).

May import: `models`, `data`, `storage`. Never `weights`, `explain`, `fitting` or anything
above them.
"""
