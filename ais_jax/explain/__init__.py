"""Stage 4a, explanations: AIS heatmaps and their comparison with saliency maps.

Per-image heatmaps (`heatmaps`), overlays (`overlay`), the TranSalNet saliency runner
(`saliency`) and matching saliency maps to images (`saliency_inputs`), the comparison metrics
(`compare`: relative risk, CC, SIM, KLD, AUC) and the null baselines (`baselines`).

May import: `engine`, `weights`, `models`, `data`, `storage`.
"""
