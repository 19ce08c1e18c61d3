"""Aim 1 end to end (SPEC §4, §7): cross-validated map selection, statistics, tables, Figure 1.

`run_aim1` is the one library call behind ``python -m experiments.aim1``. For every model and
dataset it computes (or reads from the cache) the trunk activations and ablation similarities,
then for every fold: training AIS -> ranking -> greedy curves -> ``S*`` -> Full and Retained
out-of-sample scores. Each fold is written as its own JSON file the moment it is done, so an
interrupted run resumes at the next unfinished fold. Output layout (under ``config.out``)::

    run.json                          config, checkpoints, datasets, versions
    results.json / results.csv        one row per (model, dataset): means, SEs, |S*|, t, p
    ais_correlations.json / .csv      cross-dataset Pearson of global AIS vectors
    figure1.png                       grouped bars as the paper's Figure 1
    summary.md                        our numbers beside the paper's
    <model>/<dataset>/folds/seed<s>_fold<i>.json   one fold: curves, S*, scores, images
    <model>/<dataset>/dataset.json, folds.csv, global_ais.npy
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np
import scipy.stats
from tqdm.auto import tqdm

from ais_jax import preflight, resume, storage
from ais_jax.engine import crossval, heads
from ais_jax.engine.ablation import full_embeddings
from ais_jax.engine.ais import global_ais
from ais_jax.engine.crossval import Fold
from ais_jax.engine.selection import best_prefix, greedy_curves, greedy_fc7_path, rank_maps
from ais_jax.engine.similarity import alignment
from ais_jax.fitting import compare
from ais_jax.report import figures, paper
from ais_jax.report.tables import csv_text, json_floats
from ais_jax.study.config import StudyConfig
from ais_jax.study.inputs import LoadedModel
from ais_jax.study.item import StudyItem
from ais_jax.study.runner import Aim, Study, run_study, versions

log = logging.getLogger(__name__)

# Bump when a fold's meaning changes; finished folds with another version are recomputed.
# 2: training curve on the training images alone, Retained from a masked head pass over the
# test images, the test curve only with --test_curves, the fc7 path recorded.
FOLD_FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class Aim1Config(StudyConfig):
    """What one Aim 1 run does: the shared `StudyConfig` fields plus the cross-validation.

    Attributes (beyond `ais_jax.study.config.StudyConfig`'s out, data_dir, models, datasets,
    matrix, kind, name, symmetrize, image_size, batch_size, chunk_maps, preamble):
      folds: ``k`` test chunks per shuffle.
      seeds: legacy shuffling seeds; ``len(seeds) * folds`` folds in all.
      score: ``'r2'`` (the paper's Aim 1) or ``'rho'``.
      methods: selection methods on the same folds: ``'greedy'`` (the paper's; always
        included) and optionally ``'softmask'``, ``'reweight'`` (`ais_jax.fitting.compare`).
      test_curves: also compute every fold's whole test curve (plots, comparisons); off, the
        test images are scored at S* and at all maps only. Every number both write is the
        same either way.
    """

    folds: int = 5
    seeds: tuple[int, ...] = crossval.LEGACY_SEEDS
    score: str = "r2"
    methods: tuple[str, ...] = ("greedy",)
    test_curves: bool = False

    def validate(self) -> None:
        if self.score not in ("r2", "rho"):
            raise ValueError(f"--score must be 'r2' or 'rho', got {self.score!r}")
        if self.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {self.folds}")
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds has repeated seeds: {list(self.seeds)}")
        compare.check_methods(self.methods)
        super().validate()

    def min_images(self) -> tuple[int, str]:
        # Every test fold needs MIN_TEST_IMAGES images (3 pairs) for a correlation.
        fewest = preflight.MIN_TEST_IMAGES * self.folds
        return fewest, (f"--folds={self.folds}: each test fold needs at least "
                        f"{preflight.MIN_TEST_IMAGES} images, so {fewest} images in all; use "
                        "fewer folds")


# ---------------------------------------------------------------------------------------------
# One fold.


def run_fold(head_params: Any, blocks: np.ndarray, sims: Any, human: np.ndarray, fold: Fold,
             *, score: str, chunk_maps: int | None = None, fc7_path: str = "auto",
             test_curves: bool = False) -> dict:
    """Selection on the training images of one fold, scored on its test images.

    Args:
      head_params: the model's head parameters.
      blocks: ``[n, M, B]`` the head's per-map inputs of all images (VGG-16: ``[n, 512, 49]``).
      sims: `ais_jax.engine.ablation.AblationSimilarities` of all images (its ``[train, train]``
        submatrices are exactly the ablations of the training images alone).
      human: ``[n, n]`` human similarity.
      fold: the split.
      score: ``'r2'`` or ``'rho'``.
      chunk_maps: maps per greedy step.
      fc7_path: the greedy fc7 path, decided once per dataset and model
        (`ais_jax.engine.selection.greedy_fc7_path`); 'auto' decides here.
      test_curves: also compute the whole test curve (else ``test_curve`` is None).

    Returns:
      JSON-ready dict: training AIS, training curve (and test curve with ``test_curves``),
      ``set_size`` = |S*| (maps kept), Full and Retained train/test scores, the fold's image
      indices, ``test_curves`` and ``fc7_path``.
    """
    ais = np.asarray(global_ais(sims, human, images=fold.train, score=score))  # [M]
    order = np.asarray(rank_maps(ais))
    result = greedy_curves(head_params, blocks, order, human, train=fold.train,
                           test=fold.test, score=score, chunk_maps=chunk_maps,
                           fc7_path=fc7_path, test_curve=test_curves)
    train_curve = np.asarray(result.train_curve, np.float64)  # [M]
    size = int(best_prefix(train_curve))

    def full_score(idx: np.ndarray) -> float:
        sub = np.ix_(idx, idx)
        return float(alignment(np.asarray(sims.full)[sub], np.asarray(human)[sub], score))

    return {
        "seed": fold.seed,
        "fold": fold.index,
        "train": fold.train.tolist(),
        "test": fold.test.tolist(),
        "score": score,
        "ais_train": json_floats(ais),
        "order": order.tolist(),
        "train_curve": json_floats(train_curve),
        "test_curves": bool(test_curves),
        "test_curve": None if result.test_curve is None else json_floats(result.test_curve),
        "fc7_path": fc7_path,
        "set_size": size,
        "nan_prefixes": int(np.isnan(train_curve).sum()),
        "full_train": full_score(fold.train),
        "full_test": full_score(fold.test),
        "retained_train": float(train_curve[size - 1]),
        "retained_test": result.test_best,
    }


# ---------------------------------------------------------------------------------------------
# One (model, dataset).


FOLD_COLUMNS = ("seed", "fold", "set_size", "full_train", "retained_train", "full_test",
                "retained_test", "nan_prefixes")


def run_dataset(item: StudyItem, *, on_fold: Callable[[dict], None] | None = None) -> dict:
    """All folds of one model on one dataset; writes its folder and returns its results row."""
    config = item.config
    model, key, ds, out, tag = item.model, item.key, item.dataset, item.out, item.tag
    acts, sims = item.activations, item.similarities
    blocks = item.blocks  # [n, M, B]
    human = item.human
    n = human.shape[0]

    ais_all = np.asarray(global_ais(sims.value, human, score=config.score), np.float64)
    storage.write_npy(out / "global_ais.npy", ais_all)

    # Everything a finished fold depends on; a fold file with another key is recomputed.
    # The greedy fc7 path, decided once for every fold from the unablated images.
    fc7_path, active_fraction = greedy_fc7_path(model.params["head"], blocks)
    run_key = resume.run_key(
        activations=acts.path.stem, human=resume.digest(human),
        score=config.score, k=config.folds, version=FOLD_FORMAT_VERSION,
        test_curves=config.test_curves)
    folds = crossval.cv_folds(n, tuple(config.seeds), config.folds)
    methods = compare.check_methods(config.methods)
    extra = methods != ("greedy",)
    # Reweighting reads the unmasked embeddings; a fold missing a method gets it added.
    emb = np.asarray(full_embeddings(model.params["head"], blocks)[0]) if extra else None
    records, resumed = [], 0
    for fold in tqdm(folds, desc=f"{tag} folds", unit="fold"):
        path = out / "folds" / f"seed{fold.seed}_fold{fold.index}.json"
        record = resume.read_record(path, run_key)
        if record is None:
            start = time.perf_counter()
            record = run_fold(model.params["head"], blocks, sims.value, human, fold,
                              score=config.score, chunk_maps=config.chunk_maps,
                              fc7_path=fc7_path, test_curves=config.test_curves)
            if extra:  # plain greedy records stay as they were (reproducible byte for byte)
                record["greedy_seconds"] = time.perf_counter() - start
            record = resume.write_record(path, record, run_key)
        else:
            resumed += 1
        if extra and compare.add_methods(record, head_params=model.params["head"],
                                         blocks=blocks, emb=emb, human=human,
                                         score=config.score, methods=methods):
            record = resume.write_record(path, record, run_key)
        records.append(record)
        if on_fold is not None:
            on_fold(record)

    full = np.array([r["full_test"] for r in records])
    retained = np.array([r["retained_test"] for r in records])
    sizes = np.array([r["set_size"] for r in records])
    stats = crossval.paired_stats(full, retained)
    row = {
        "model": model.label,
        "dataset": key,
        "display_name": ds.name,
        "n_images": n,
        "n_folds": len(records),
        "score": config.score,
        **{k: v for k, v in stats.items() if k != "se_formula"},
        "mean_set_size": float(sizes.mean()),
        "sd_set_size": float(sizes.std(ddof=1)),
        "mean_full_train": float(np.mean([r["full_train"] for r in records])),
        "mean_retained_train": float(np.mean([r["retained_train"] for r in records])),
        "fc7_path": fc7_path,
        "fc6_active_fraction": active_fraction,
        "test_curves": config.test_curves,
    }
    if extra:
        secs = [r["greedy_seconds"] for r in records if "greedy_seconds" in r]  # not if resumed
        row.update(method="greedy", mean_test=row["mean_retained"],
                   mean_seconds=float(np.mean(secs)) if secs else None)
        same = {k: row[k] for k in ("model", "dataset", "display_name", "n_images", "n_folds",
                                    "score")}
        row["method_rows"] = [{**same, **m} for m in compare.method_rows(records, methods)]
    storage.write_text(out / "folds.csv", csv_text(records, FOLD_COLUMNS))
    storage.write_json(out / "dataset.json", {
        **row,
        "se_formula": crossval.SE_FORMULA,
        "checkpoint": {"source": model.source, "source_sha256": model.checkpoint_sha256},
        "data": ds.manifest(),
        "seeds": list(config.seeds),
        "folds": [{"seed": r["seed"], "fold": r["fold"], "test": r["test"]} for r in records],
        "cache": {"activations": "hit" if acts.hit else "computed",
                  "similarities": "hit" if sims.hit else "computed",
                  "folds_resumed": resumed},
        "versions": versions(fold_format_version=FOLD_FORMAT_VERSION),
    })
    return {**row, "global_ais": ais_all, "folds_resumed": resumed,
            "cache_hits": {"activations": acts.hit, "similarities": sims.hit}}


# ---------------------------------------------------------------------------------------------
# Across datasets.


def ais_correlations(rows: Sequence[dict]) -> list[dict]:
    """Pearson correlation of the M-long global AIS vectors for each pair of datasets, per model.

    Args:
      rows: results rows with ``model``, ``dataset`` and ``global_ais`` ``[M]``.

    Returns:
      One dict per (model, dataset pair): ``model``, ``a``, ``b``, ``r``, ``paper_r``.
    """
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        for ra, rb in itertools.combinations(mine, 2):
            r = float(scipy.stats.pearsonr(ra["global_ais"], rb["global_ais"]).statistic)
            out.append({"model": model, "a": ra["dataset"], "b": rb["dataset"], "r": r,
                        "paper_r": paper.ais_correlation(model, ra["dataset"], rb["dataset"])})
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def summary_markdown(rows: Sequence[dict], correlations: Sequence[dict],
                     config: Aim1Config, models: Sequence[LoadedModel]) -> str:
    """The run's summary: our Figure 1 numbers beside the paper's, AIS correlations, notes."""
    score = "R²" if config.score == "r2" else "ρ"
    lines = []
    if config.preamble:
        lines += [config.preamble.rstrip(), ""]
    lines += [
        "# Aim 1: Full vs Retained maps, out of sample",
        "",
        f"Score: {score} between model and human similarity (upper triangles). Folds: "
        f"{config.folds} per shuffle × {len(config.seeds)} legacy seeds "
        f"({', '.join(map(str, config.seeds))}) = {config.folds * len(config.seeds)} folds.",
        f"Error bars / ± are paired SEs: {crossval.SE_FORMULA}. "
        "t and p: paired two-tailed t-test over folds (scipy.stats.ttest_rel, Retained − Full).",
        "",
        "Checkpoints: " + "; ".join(f"{m.label} = {m.source} (source sha256 "
                                    f"{m.checkpoint_sha256[:12]}…)" for m in models) + ".",
        "",
        f"| model | dataset | n | Full {score} | Retained {score} | mean \\|S*\\| | t | p "
        "| paper Full | paper Retained | paper \\|S*\\| | paper p<.01 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = paper.figure1(r["model"], r["dataset"]) if config.score == "r2" else None
        lines.append(
            f"| {r['model']} | {r['display_name']} | {r['n_images']} "
            f"| {r['mean_full']:.3f} ± {r['se_paired']:.3f} "
            f"| {r['mean_retained']:.3f} ± {r['se_paired']:.3f} | {r['mean_set_size']:.1f} "
            f"| {r['t']:.2f} | {r['p']:.2g} "
            f"| {_fmt(ref and ref['full'])} | {_fmt(ref and ref['retained'])} "
            f"| {ref['set_size'] if ref else '–'} "
            f"| {('yes' if ref['significant'] else 'no') if ref else '–'} |")
    lines += ["", f"Note: {paper.SET_SIZE_NOTE}", ""]
    method_rows = [m for r in rows for m in r.get("method_rows", ())]
    if method_rows:
        sizes = {m.label: (m.arch.maps, heads.embedding_width(m.params["head"]))
                 for m in models}
        lines += compare.methods_markdown(method_rows, config.score, sizes)
    if correlations:
        lines += ["## Cross-dataset correlation of global AIS (all images)", "",
                  "| model | dataset A | dataset B | r | paper r |", "|---|---|---|---|---|"]
        display = {r["dataset"]: r["display_name"] for r in rows}
        for c in correlations:
            lines.append(f"| {c['model']} | {display[c['a']]} | {display[c['b']]} "
                         f"| {c['r']:.3f} | {_fmt(c['paper_r'])} |")
        lines += ["", f"The paper names the pairs above; all its other pairs are below "
                  f"{paper.AIS_CORRELATION_OTHERS_BELOW}.", ""]
    lines += ["Files: results.csv/json (this table), ais_correlations.csv/json, figure1.png, "
              "<model>/<dataset>/folds/*.json (every fold's curves, S*, scores and images).", ""]
    return "\n".join(lines)


RESULT_COLUMNS = ("model", "dataset", "display_name", "n_images", "n_folds", "score",
                  "mean_full", "mean_retained", "mean_diff", "sd_diff", "se_paired", "se_full",
                  "se_retained", "t", "p", "mean_set_size", "sd_set_size", "mean_full_train",
                  "mean_retained_train")


def run_aim1(config: Aim1Config, *, on_fold: Callable[[dict], None] | None = None) -> dict:
    """Runs Aim 1 for every model and dataset of ``config``; see the module docstring.

    Args:
      config: the run.
      on_fold: called with each fold's record after it is written (or read back on resume).

    Returns:
      ``{'out': Path, 'rows': [results row per (model, dataset)], 'correlations': [...],
      'files': {...}}``; rows also hold ``global_ais`` ``[M]`` and cache/resume counts.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input, before anything is written.
    """
    return run_study(config, aim1(on_fold=on_fold))


def aim1(*, on_fold: Callable[[dict], None] | None = None) -> Aim:
    """Aim 1 as a `ais_jax.study.runner.Aim`: folds per (model, dataset), then tables."""
    return Aim("aim1", lambda item: run_dataset(item, on_fold=on_fold), write_tables,
               versions={"fold_format_version": FOLD_FORMAT_VERSION})


def write_tables(study: Study, rows: list[dict]) -> dict:
    """Aim 1's across-datasets step: results, AIS correlations, Figure 1, summary.md."""
    config, models, out = study.config, study.models, study.out
    correlations = ais_correlations(rows)
    # With --methods beyond greedy, each (model, dataset) row is followed by one per method.
    method_rows = [m for r in rows for m in r.get("method_rows", ())]
    columns = RESULT_COLUMNS + (compare.EXTRA_COLUMNS if method_rows else ())
    public = [{k: v for k, v in r.items() if k in columns}
              for row in rows for r in (row, *row.get("method_rows", ()))]
    storage.write_json(out / "results.json", {"se_formula": crossval.SE_FORMULA, "rows": public})
    storage.write_text(out / "results.csv", csv_text(public, columns))
    storage.write_json(out / "ais_correlations.json", correlations)
    storage.write_text(out / "ais_correlations.csv",
                       csv_text(correlations, ("model", "a", "b", "r", "paper_r")))
    fig_rows = [{**r, "dataset": r["display_name"]} for r in rows]
    label = "Pearson's $R^2$" if config.score == "r2" else "Pearson's $\\rho$"
    extra_bars = [{**m, "dataset": m["display_name"]} for m in method_rows]
    figures.save_figure(figures.figure1(fig_rows, score_label=label, extra_rows=extra_bars),
                        out / "figure1.png")
    storage.write_text(out / "summary.md", summary_markdown(rows, correlations, config, models))
    # run.json (written before the folds) gains the per-(model, dataset) greedy fc7 decision.
    run = json.loads((out / "run.json").read_text())
    run["greedy_fc7_path"] = {f"{r['model']}/{r['dataset']}": {
        "fc7_path": r["fc7_path"], "fc6_active_fraction": r["fc6_active_fraction"]}
        for r in rows}
    storage.write_json(out / "run.json", run)
    files = {name: out / name for name in ("summary.md", "figure1.png", "results.csv",
                                           "results.json", "ais_correlations.csv", "run.json")}
    return {"out": out, "rows": rows, "correlations": correlations, "files": files}
