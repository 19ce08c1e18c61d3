"""Figures of the experiments, as functions returning matplotlib Figures (Agg, never shown)."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ais_jax import storage  # noqa: E402

DPI = 150
# One hue per model; Full light, Retained dark.
MODEL_COLOURS = {
    "imagenet": ("#9ecae1", "#2171b5"),
    "ecoset": ("#fdae6b", "#d94801"),
}
FALLBACK_COLOURS = (("#c7e9c0", "#238b45"), ("#dadaeb", "#6a51a3"), ("#d9d9d9", "#525252"))
# Extra methods' bars (`ais_jax.fitting.compare`): the model's dark colour, one hatch each.
METHOD_HATCHES = {"softmask": "//", "softmask_hard": "xx", "reweight": ".."}


def _colours(models: Sequence[str]) -> dict[str, tuple[str, str]]:
    spare = iter(FALLBACK_COLOURS * len(models))
    return {m: MODEL_COLOURS.get(m.lower()) or next(spare) for m in models}


def figure1(rows: Sequence[dict], *, score_label: str = "Pearson's $R^2$",
            extra_rows: Sequence[dict] = ()) -> Figure:
    """Grouped bars of out-of-sample Full vs Retained scores per dataset (the paper's Figure 1).

    Args:
      rows: one dict per (model, dataset) with keys ``model``, ``dataset`` (display name),
        ``mean_full``, ``mean_retained``, ``se_paired`` (Loftus-Masson error bar) and
        ``mean_set_size`` (mean |S*|, printed above the Retained bar).
      score_label: y-axis label.
      extra_rows: optional bars of other methods on the same folds, drawn after Retained:
        dicts with ``model``, ``dataset``, ``method``, ``mean_test`` and ``se_paired``.

    Returns:
      The Figure.
    """
    if not rows:
        raise ValueError("figure1 needs at least one (model, dataset) row")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = _colours(models)
    by_key = {(r["model"], r["dataset"]): r for r in rows}
    methods = list(dict.fromkeys(r["method"] for r in extra_rows))
    for r in extra_rows:  # an extra bar is a condition of the row it belongs to
        by_key[(r["model"], r["dataset"])] = {**by_key[(r["model"], r["dataset"])],
                                              f"mean_{r['method']}": r["mean_test"],
                                              f"se_{r['method']}": r["se_paired"]}
    conditions = [("Full", "mean_full"), ("Retained", "mean_retained")] + [
        (m, f"mean_{m}") for m in methods]
    n_per_model = len(conditions)
    n_bars = n_per_model * len(models)
    width = 0.8 / n_bars
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(datasets) * len(models) + 2), 4.8))
    x = np.arange(len(datasets))
    top = 0.0
    for m_i, model in enumerate(models):
        for c_i, (cond, key) in enumerate(conditions):
            offset = (n_per_model * m_i + c_i - (n_bars - 1) / 2) * width
            present = [d for d in datasets if key in by_key.get((model, d), {})]
            if not present:
                continue
            xs = x[[datasets.index(d) for d in present]] + offset
            means = np.array([by_key[(model, d)][key] for d in present])
            se_key = "se_paired" if c_i < 2 else f"se_{cond}"
            errs = np.array([by_key[(model, d)][se_key] for d in present])
            ax.bar(xs, means, width, yerr=errs, capsize=3, color=colours[model][min(c_i, 1)],
                   hatch=METHOD_HATCHES.get(cond) if c_i >= 2 else None,
                   edgecolor="black", linewidth=0.6, label=f"{model} {cond}")
            if np.isfinite(means + errs).any():  # a condition undefined on every fold: no bar
                top = max(top, float(np.nanmax(means + errs)))
            if cond == "Retained":
                for xi, d, mean, err in zip(xs, present, means, errs, strict=True):
                    ax.annotate(f"{by_key[(model, d)]['mean_set_size']:.0f}", (xi, mean + err),
                                xytext=(0, 3), textcoords="offset points", ha="center",
                                va="bottom", fontsize=8)
    ax.set_xticks(x, datasets)
    ax.set_ylabel(f"out-of-sample {score_label}")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), top * 1.15 + 1e-3)
    ax.set_title("Full vs Retained maps (numbers: mean |S*|; error bars: paired SE)" + (
        f"\nhatched, same folds: {', '.join(methods)}" if methods else ""))
    ax.legend(frameon=False, fontsize=8, ncol=len(models))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _finite_mean(curves: np.ndarray) -> np.ndarray:
    """Mean over folds ignoring NaN scores (NaN where no fold has one): ``[f, m]`` -> ``[m]``."""
    ok = np.isfinite(curves)
    count = ok.sum(axis=0)
    total = np.where(ok, curves, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def recovery_figure(ais: np.ndarray, planted: np.ndarray, train_curves: np.ndarray,
                    test_curves: np.ndarray, *, planted_size: int) -> Figure:
    """The demo's planted-truth check: AIS of planted vs other maps, and the greedy curves.

    Args:
      ais: ``[M]`` global AIS on all images.
      planted: ``[M]`` bool, True for the maps the "human" similarity was built from.
      train_curves: ``[folds, M]`` training score vs number of maps kept.
      test_curves: ``[folds, M]`` test score vs number of maps kept.
      planted_size: ``|P|``, marked on the curves.

    Returns:
      The Figure.
    """
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    order = np.argsort(-ais, kind="stable")
    rank = np.arange(ais.size)
    ax0.scatter(rank[~planted[order]], ais[order][~planted[order]], s=6, c="#969696",
                label="other maps")
    ax0.scatter(rank[planted[order]], ais[order][planted[order]], s=10, c="#d94801",
                label="planted maps")
    ax0.axhline(0, color="black", linewidth=0.5)
    ax0.set_xlabel("rank by global AIS")
    ax0.set_ylabel("global AIS")
    ax0.set_title("Global AIS: planted vs other maps")
    ax0.legend(frameon=False)
    sizes = np.arange(1, train_curves.shape[1] + 1)
    ax1.plot(sizes, _finite_mean(train_curves), color="#2171b5", label="train (mean)")
    ax1.plot(sizes, _finite_mean(test_curves), color="#d94801", label="test (mean)")
    ax1.axvline(planted_size, color="black", linestyle="--", linewidth=0.8,
                label=f"|P| = {planted_size}")
    ax1.set_xlabel("maps kept (greedy, by training AIS)")
    ax1.set_ylabel("score")
    ax1.set_title("Greedy selection curves")
    ax1.legend(frameon=False)
    for ax in (ax0, ax1):
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Saves ``fig`` as PNG at ``DPI`` atomically and closes it."""
    try:
        with storage.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
    finally:
        plt.close(fig)
