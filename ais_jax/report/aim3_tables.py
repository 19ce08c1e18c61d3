"""Aim 3 tables: Table 1 (relative risk), the map-vs-map metrics and the baseline tests.

Inputs are the per-image arrays of `ais_jax.explain.compare.compare_maps`, keyed by
``(model, dataset)`` (and by map source — ``'ais'`` or a baseline — for the metrics). Rows are
plain dicts, ready for CSV/JSON; ``*_markdown`` turn them into summary.md tables.

Summary rules: mean and SD (``ddof=1``) over the images with a finite RR; the median over the
images with a defined RR (inf included, as larger than any finite value; NaN excluded); the
number of inf and of NaN images (by cause) in every row. The "All" row pools the images of all
datasets of a model.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ais_jax.explain.baselines import paired_test
from ais_jax.explain.compare import PERCENTS
from ais_jax.report import paper

ALL = "all"
# Higher is better (closer agreement) for all metrics but KLD.
LOWER_IS_BETTER = ("kld",)


def summarise(values: np.ndarray) -> dict:
    """Mean, SD and median of per-image values with inf/NaN accounted for.

    Args:
      values: ``[n]`` float (may hold +-inf and NaN).

    Returns:
      dict ``n``, ``n_finite``, ``n_inf``, ``n_nan``, ``mean`` and ``sd`` (finite values,
      ``ddof=1``; NaN when too few), ``median`` (all non-NaN values).
    """
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    defined = values[~np.isnan(values)]
    return {
        "n": int(values.size),
        "n_finite": int(finite.size),
        "n_inf": int(np.isinf(values).sum()),
        "n_nan": int(np.isnan(values).sum()),
        "mean": float(finite.mean()) if finite.size else np.nan,
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
        "median": float(np.median(defined)) if defined.size else np.nan,
    }


def _pooled(results: Mapping[tuple[str, str], Mapping[str, np.ndarray]], model: str, key: str
            ) -> np.ndarray:
    return np.concatenate([np.asarray(r[key]) for (m, _), r in results.items() if m == model])


def table1_rows(results: Mapping[tuple[str, str], Mapping[str, np.ndarray]],
                percents: Sequence[float] = PERCENTS) -> list[dict]:
    """Table 1: relative risk per model x dataset x p, with an "All" row per model.

    Args:
      results: ``{(model, dataset): compare_maps(...)}`` for the AIS heatmaps.
      percents: the p to tabulate.

    Returns:
      One row per (model, dataset, p), datasets in the given order then ``'all'``: `summarise`
      of ``rr_<p>``, the NaN counts by cause (``n_nan_empty_saliency``,
      ``n_nan_empty_heatmap``), and the paper's ``paper_mean``/``paper_sd`` (None if absent).
    """
    rows = []
    models = list(dict.fromkeys(m for m, _ in results))
    for model in models:
        datasets = [d for m, d in results if m == model]
        for dataset in [*datasets, ALL]:
            for p in percents:
                tag = f"{p:g}"
                if dataset == ALL:
                    rr, case = _pooled(results, model, f"rr_{tag}"), _pooled(
                        results, model, f"case_{tag}")
                else:
                    rr, case = results[(model, dataset)][f"rr_{tag}"], results[(model, dataset)][
                        f"case_{tag}"]
                # The paper's "All" pools its six datasets: comparable only when ours are those.
                ref = (paper.table1(model, dataset, p) if dataset != ALL or set(datasets) ==
                       set(paper.TABLE1_RR.get(paper.paper_model(model), {})) - {ALL} else None)
                rows.append({
                    "model": model, "dataset": dataset, "p": float(p), **summarise(rr),
                    "n_nan_empty_saliency": int(np.sum(case == "nan_empty_saliency")),
                    "n_nan_empty_heatmap": int(np.sum(case == "nan_empty_heatmap")),
                    "paper_mean": ref[0] if ref else None,
                    "paper_sd": ref[1] if ref else None,
                })
    return rows


def metric_keys(percents: Sequence[float] = PERCENTS) -> list[str]:
    """The per-image comparisons summarised for every map source."""
    return ([f"rr_{p:g}" for p in percents] + ["cc", "sim", "kld"]
            + [f"auc_{p:g}" for p in percents])


def metric_rows(per_source: Mapping[tuple[str, str], Mapping[str, Mapping[str, np.ndarray]]],
                percents: Sequence[float] = PERCENTS) -> list[dict]:
    """Every comparison, summarised per model x dataset x map source x metric.

    Args:
      per_source: ``{(model, dataset): {source: compare_maps(...)}}``, source ``'ais'`` or a
        baseline's name.
      percents: the p of the RR and AUC keys.

    Returns:
      Rows ``model``, ``dataset`` (with ``'all'`` rows pooling a model's datasets),
      ``source``, ``metric`` and `summarise`'s fields.
    """
    rows = []
    models = list(dict.fromkeys(m for m, _ in per_source))
    for model in models:
        datasets = [d for m, d in per_source if m == model]
        sources = list(dict.fromkeys(s for (m, _), v in per_source.items() if m == model
                                     for s in v))
        for dataset in [*datasets, ALL]:
            for source in sources:
                for key in metric_keys(percents):
                    if dataset == ALL:
                        values = np.concatenate([np.asarray(v[source][key])
                                                 for (m, _), v in per_source.items()
                                                 if m == model and source in v])
                    elif source in per_source[(model, dataset)]:
                        values = per_source[(model, dataset)][source][key]
                    else:
                        continue
                    rows.append({"model": model, "dataset": dataset, "source": source,
                                 "metric": key, **summarise(values)})
    return rows


def baseline_test_rows(
    per_source: Mapping[tuple[str, str], Mapping[str, Mapping[str, np.ndarray]]],
    percents: Sequence[float] = PERCENTS,
) -> list[dict]:
    """Paired tests of AIS against each baseline, per model x dataset (and pooled) x metric.

    Args:
      per_source: as `metric_rows`; must hold ``'ais'`` for every key.
      percents: the p of the RR and AUC keys.

    Returns:
      Rows ``model``, ``dataset``, ``baseline``, ``metric``, ``ais_better`` (images where AIS
      agrees more with the saliency map: higher value, or lower KLD) and `paired_test`'s fields
      (``wins`` = AIS value higher).
    """
    rows = []
    models = list(dict.fromkeys(m for m, _ in per_source))
    for model in models:
        keys = [k for k in per_source if k[0] == model]
        baselines = list(dict.fromkeys(s for k in keys for s in per_source[k] if s != "ais"))
        for dataset in [*(d for _, d in keys), ALL]:
            group = keys if dataset == ALL else [(model, dataset)]
            for baseline in baselines:
                if not all(baseline in per_source[k] for k in group):
                    continue
                for key in metric_keys(percents):
                    ais = np.concatenate([np.asarray(per_source[k]["ais"][key]) for k in group])
                    base = np.concatenate([np.asarray(per_source[k][baseline][key])
                                           for k in group])
                    test = paired_test(ais, base)
                    better = test["losses"] if key in LOWER_IS_BETTER else test["wins"]
                    rows.append({"model": model, "dataset": dataset, "baseline": baseline,
                                 "metric": key, "ais_better": better, **test})
    return rows


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if np.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def _name(dataset: str, names: Mapping[str, str] | None) -> str:
    if dataset == ALL:
        return "All"
    return (names or {}).get(dataset, dataset)


def table1_markdown(rows: Sequence[dict], names: Mapping[str, str] | None = None) -> str:
    """Table 1 as Markdown: ours (mean ± SD, median, inf/NaN counts) beside the paper's.

    Args:
      rows: from `table1_rows`.
      names: dataset key -> display name (e.g. ``'automobiles'`` -> ``'Transportation'``).

    Returns:
      One Markdown table per model.
    """
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        percents = list(dict.fromkeys(r["p"] for r in mine))
        head = ["dataset"]
        for p in percents:
            head += [f"{p:g}% ours (mean ± SD)", f"{p:g}% median", f"{p:g}% paper"]
        head += ["n", "inf / NaN (per p)"]
        lines = [f"**{model}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        for dataset in dict.fromkeys(r["dataset"] for r in mine):
            by_p = {r["p"]: r for r in mine if r["dataset"] == dataset}
            cells = [_name(dataset, names)]
            for p in percents:
                r = by_p[p]
                ref = ("–" if r["paper_mean"] is None
                       else f"{r['paper_mean']:.1f} ± {r['paper_sd']:.1f}")
                cells += [f"{_fmt(r['mean'])} ± {_fmt(r['sd'])}", _fmt(r["median"]), ref]
            cells.append(str(by_p[percents[0]]["n"]))
            cells.append(", ".join(f"{by_p[p]['n_inf']} / {by_p[p]['n_nan']}" for p in percents))
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def baselines_markdown(metric: Sequence[dict], tests: Sequence[dict],
                       names: Mapping[str, str] | None = None, *, dataset: str = ALL) -> str:
    """AIS vs the baselines for one dataset (default: all pooled), per model, as Markdown.

    Each cell: mean (median) of the metric; for a baseline also the number of images where
    AIS agrees better with saliency, and the Wilcoxon p of AIS vs that baseline.

    Args:
      metric: rows from `metric_rows`.
      tests: rows from `baseline_test_rows`.
      names: dataset key -> display name.
      dataset: which dataset's rows (``'all'``: pooled).

    Returns:
      Markdown.
    """
    out = []
    for model in dict.fromkeys(r["model"] for r in metric):
        rows = [r for r in metric if r["model"] == model and r["dataset"] == dataset]
        sources = list(dict.fromkeys(r["source"] for r in rows))
        keys = list(dict.fromkeys(r["metric"] for r in rows))
        head = ["metric", *sources]
        lines = [f"**{model}, {_name(dataset, names)}** — mean (median); for a baseline: "
                 "images where AIS agrees better / images compared, Wilcoxon p",
                 "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key in keys:
            cells = [key]
            for source in sources:
                r = next(x for x in rows if x["source"] == source and x["metric"] == key)
                digits = 3 if not key.startswith("rr_") else 2
                cell = f"{_fmt(r['mean'], digits)} ({_fmt(r['median'], digits)})"
                t = next((x for x in tests if x["model"] == model and x["dataset"] == dataset
                          and x["baseline"] == source and x["metric"] == key), None)
                if t is not None:
                    compared = t["n"] - t["n_nan"]
                    p = "–" if np.isnan(t["p"]) else f"{t['p']:.2g}"
                    cell += f"; {t['ais_better']}/{compared}, p = {p}"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
