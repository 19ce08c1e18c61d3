"""Stage 6, what a person reads: every figure, every table and the paper's numbers.

Figure 1 and the shared figure style (`figures`), Aim 2's and Aim 3's figures
(`aim2_figures`, `aim3_figures`), Table 1 (`aim3_tables`), CSV/JSON table text (`tables`),
the numbers the paper reports (`paper`) and the static page ``report.html`` of a results folder
(`html`, with its Jinja2 templates in ``templates/`` and `thumbnails`).

May import: everything below it; never `study`.
"""
