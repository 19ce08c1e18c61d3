"""Stage 4b, beyond the paper: selections learned on the same folds as greedy selection.

Soft masks over the maps (`softmask`, optax), feature reweighting (`reweight`), their shared
inner solver (`inner`) and the per-fold comparison with greedy selection (`compare`).

May import: `engine`, `models`, `data`, `storage`.
"""
