"""ais_jax: Alignment Importance Score (AIS) heatmaps in JAX/Flax.

The folders are the pipeline, each importing only from those below it (enforced by the import
contracts in pyproject.toml)::

    study/     the runner and every aim, demo, rehearsal and benchmark      (top)
    report/    figures, tables, the paper's numbers
    interop/   exports (rsatoolbox RDMs out)
    fitting/   soft masks, reweighting          stats/   heatmap statistics
    explain/   heatmaps, overlays, saliency maps and their comparison
    engine/    activations -> ablations -> similarities -> AIS -> selection
    weights    converted-weights loading
    models/    the networks (Flax, pure apply)
    data/      images and datasets with human matrices
    resume, preflight, storage: resumable records, checks before work, atomic files (bottom)

The score itself is `ais_jax.engine.ais.global_ais` (one AIS per map) and
`ais_jax.engine.ais.per_image_ais` (one per image and map).
"""

__version__ = "0.1.0"
