"""Greedy selection, soft masks and reweighting on the same folds: per-fold runs and table rows.

Aim 1 computes the greedy fold record (`ais_jax.study.aim1.run_fold`); `add_methods` adds, under the
method's name, each other method's numbers on the same fold's train/test images, and
`method_rows` turns the records of one (model, dataset) into one results row per method and
condition, with paired statistics against Full and against greedy Retained (the same folds
give the pairs).
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from ais_jax.engine import crossval
from ais_jax.fitting import inner, reweight, softmask

METHODS = ("greedy", "softmask", "reweight")
# Results-table conditions per extra method: (condition, test key, train key, set-size key).
CONDITIONS = {
    "softmask": (("softmask", "test_soft", "train_soft", "hard_size"),
                 ("softmask_hard", "test_hard", "train_hard", "hard_size")),
    "reweight": (("reweight", "test_score", "train_score", None),),
}
EXTRA_COLUMNS = ("method", "mean_test", "mean_greedy", "diff_vs_greedy", "se_paired_vs_greedy",
                 "t_vs_greedy", "p_vs_greedy", "mean_overlap_greedy", "mean_seconds")


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Validates ``--methods``: known names, no repeats, greedy included (the others are
    compared with it), in `METHODS` order."""
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"--methods repeats a method: {list(methods)}")
    if "greedy" not in methods:
        raise ValueError("--methods must include greedy (the other methods are compared with "
                         "its S* and Retained scores)")
    return tuple(m for m in METHODS if m in methods)


def add_methods(record: dict, *, head_params: Any, blocks: np.ndarray, emb: np.ndarray,
                human: np.ndarray, score: str, methods: Sequence[str]) -> bool:
    """Adds the non-greedy ``methods`` missing from a greedy fold record, in place.

    Args:
      record: `ais_jax.study.aim1.run_fold`'s dict (its ``train``, ``test``, ``order`` and
        ``set_size`` give the split and S*).
      head_params: the head parameters.
      blocks: ``[n, M, B]`` per-map head inputs of all images (VGG-16: ``[n, 512, 49]``).
      emb: ``[n, D]`` unmasked penultimate embeddings of all images (VGG-16: D = 4096).
      human: ``[n, n]`` human similarity.
      score: 'r2' or 'rho'.
      methods: checked methods (`check_methods`).

    Returns:
      Whether anything was added (the record must then be rewritten). Each method's dict
      holds its numbers, hyper-parameters and ``seconds`` (wall time of its fit on this fold).
    """
    train, test = np.asarray(record["train"]), np.asarray(record["test"])
    added = False
    for method in methods:
        if method == "greedy" or method in record:
            continue
        start = time.perf_counter()
        if method == "softmask":
            s_star = np.asarray(record["order"][: record["set_size"]])
            result = softmask.fit_softmask(head_params, blocks, human, train, test, score=score,
                                           greedy_set=s_star)
        else:
            # 5 inner folds, fewer where the training images would give chunks under 3 images.
            k = min(reweight.DEFAULT_INNER_FOLDS, train.size // inner.MIN_IMAGES)
            result = reweight.fit_reweight(emb, human, train, test, score=score, inner_folds=k)
        result.pop("train"), result.pop("test")  # the record holds them once
        record[method] = {**result, "seconds": time.perf_counter() - start}
        added = True
    return added


def method_rows(records: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """One results row per extra method's condition over the folds of one (model, dataset).

    Args:
      records: fold records with every method of ``methods`` added.
      methods: checked methods.

    Returns:
      Rows with `ais_jax.engine.crossval.paired_stats` of the condition against Full (``mean_full``,
      ``mean_retained`` = the condition's mean test score, ``se_paired``, ``t``, ``p``, ...) and
      against greedy Retained (the ``*_vs_greedy`` columns of `EXTRA_COLUMNS`), plus mean set
      size (soft mask: the hard set), overlap with S* and seconds per fold.
    """
    full = np.array([r["full_test"] for r in records], np.float64)
    greedy = np.array([r["retained_test"] for r in records], np.float64)
    rows = []
    for method in methods:
        for condition, test_key, train_key, size_key in CONDITIONS.get(method, ()):
            test = np.array([r[method][test_key] for r in records], np.float64)
            vs_full = crossval.paired_stats(full, test)
            vs_greedy = crossval.paired_stats(greedy, test)
            sizes = [r[method][size_key] for r in records] if size_key else []
            overlap = [r[method]["overlap_greedy"] for r in records
                       if r[method].get("overlap_greedy") is not None]
            rows.append({
                "method": condition,
                **{k: v for k, v in vs_full.items() if k != "se_formula"},
                "mean_test": float(test.mean()),
                "mean_set_size": float(np.mean(sizes)) if sizes else None,
                "sd_set_size": float(np.std(sizes, ddof=1)) if len(sizes) > 1 else None,
                "mean_full_train": float(np.mean([r["full_train"] for r in records])),
                "mean_retained_train": float(np.mean([r[method][train_key] for r in records])),
                "mean_greedy": vs_greedy["mean_full"],
                "diff_vs_greedy": vs_greedy["mean_diff"],
                "se_paired_vs_greedy": vs_greedy["se_paired"],
                "t_vs_greedy": vs_greedy["t"],
                "p_vs_greedy": vs_greedy["p"],
                "mean_overlap_greedy": float(np.mean(overlap)) if overlap else None,
                "mean_seconds": float(np.mean([r[method]["seconds"] for r in records])),
            })
    return rows


def _sizes_text(sizes: Mapping[str, tuple[int, int]], index: int, noun: str) -> str:
    """``'the 512 maps'`` when every model has the same size, else each model's."""
    values = {label: size[index] for label, size in sizes.items()}
    if len(set(values.values())) == 1:
        return f"the {next(iter(values.values()))} {noun}"
    return f"each model's {noun} ({', '.join(f'{k}: {v}' for k, v in values.items())})"


def methods_markdown(rows: Sequence[dict], score: str,
                     sizes: Mapping[str, tuple[int, int]]) -> list[str]:
    """Summary lines: every condition's test score beside Full and greedy Retained.

    Args:
      rows: `method_rows` of every (model, dataset).
      score: ``'r2'`` or ``'rho'``.
      sizes: model label -> (M maps of its ablated layer, width D of its penultimate
        embedding), e.g. VGG-16's (512, 4096).
    """
    label = "R²" if score == "r2" else "ρ"
    maps, features = _sizes_text(sizes, 0, "maps"), _sizes_text(sizes, 1, "penultimate features")
    lines = [
        "## Beyond the paper: soft masks and feature reweighting (same folds)", "",
        f"softmask: learned mask m = sigmoid(θ) over {maps} (optax Adam, penalty λ·mean(m) "
        "chosen on an inner hold-out of the training images); softmask_hard: the maps with "
        f"m > 0.5; reweight: ridge-fitted weights on {features} "
        "(Peterson et al. 2018), penalty by inner cross-validation over training images. "
        "Paired t-tests over folds against Full and against greedy Retained.", "",
        f"| model | dataset | method | test {label} | vs Full: t, p | vs greedy: diff, t, p "
        "| mean set size | overlap with S* | s / fold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = "–" if r.get("mean_set_size") is None else f"{r['mean_set_size']:.1f}"
        overlap = ("–" if r.get("mean_overlap_greedy") is None
                   else f"{r['mean_overlap_greedy']:.1f}")
        lines.append(
            f"| {r['model']} | {r['display_name']} | {r['method']} "
            f"| {r['mean_test']:.3f} ± {r['se_paired']:.3f} | {r['t']:.2f}, {r['p']:.2g} "
            f"| {r['diff_vs_greedy']:+.3f}, {r['t_vs_greedy']:.2f}, {r['p_vs_greedy']:.2g} "
            f"| {size} | {overlap} | {r['mean_seconds']:.1f} |")
    return lines + [""]
