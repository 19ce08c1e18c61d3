"""Stage 4c, statistics of heatmaps: Aim 2's KS and Match statistics, spatial recovery.

May import: `explain`, `engine`, `data`, `storage`.
"""
