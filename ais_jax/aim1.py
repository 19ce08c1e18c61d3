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

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import platform
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import flax
import jax
import numpy as np
import scipy
import scipy.stats
from tqdm.auto import tqdm

import ais_jax
from ais_jax import activations, crossval, figures, paper, storage
from ais_jax.ais import global_ais
from ais_jax.crossval import Fold
from ais_jax.data import datasets as ds_lib
from ais_jax.data.images import PREPROCESS_VERSION, open_rgb, resized_shape
from ais_jax.selection import best_prefix, greedy_curves, rank_maps
from ais_jax.similarity import alignment
from ais_jax.weights import load_vgg16

log = logging.getLogger(__name__)

NUM_MAPS = 512

# Bump when a fold's meaning changes; finished folds with another version are recomputed.
FOLD_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Aim1Config:
    """What one Aim 1 run does.

    Attributes:
      out: results directory.
      data_dir: a Peterson root (``<root>/<category>/images``, ``.../sim_judgements``) or, with
        ``matrix``, a plain folder of images.
      models: ``(label, source)`` pairs; source is ``'imagenet'``, ``'ecoset'`` (converted
        weights in the cache) or a path to a converted ``.safetensors`` file.
      datasets: Peterson categories to run (None: all six).
      matrix: plain layout only: the ``n x n`` ``.npy``/``.csv`` matrix of the images in
        ``data_dir`` (sorted by file name).
      kind: ``'similarity'`` or ``'dissimilarity'`` (plain layout; converted by sign flip).
      name: plain layout only: the dataset's name (default: the folder's name).
      symmetrize: average the matrix with its transpose (default: use the upper triangle).
      folds: ``k`` test chunks per shuffle.
      seeds: legacy shuffling seeds; ``len(seeds) * folds`` folds in all.
      score: ``'r2'`` (the paper's Aim 1) or ``'rho'``.
      image_size: shorter side of the network input.
      batch_size: images per trunk call.
      chunk_maps: maps per ablation/greedy step (None: the kernels' default).
      preamble: Markdown placed at the top of summary.md (the demo describes itself there).
    """

    out: str
    data_dir: str
    models: tuple[tuple[str, str], ...]
    datasets: tuple[str, ...] | None = None
    matrix: str | None = None
    kind: str = "similarity"
    name: str | None = None
    symmetrize: bool = False
    folds: int = 5
    seeds: tuple[int, ...] = crossval.LEGACY_SEEDS
    score: str = "r2"
    image_size: int = 224
    batch_size: int = 8
    chunk_maps: int | None = None
    preamble: str = ""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model's label, parameters and the identity of its checkpoint."""

    label: str
    source: str
    params: Any
    checkpoint_sha256: str
    metadata: dict


# ---------------------------------------------------------------------------------------------
# Validation: everything that can fail on the user's input fails before anything is written.


def _check_config(config: Aim1Config) -> None:
    if config.score not in ("r2", "rho"):
        raise ValueError(f"--score must be 'r2' or 'rho', got {config.score!r}")
    if config.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {config.folds}")
    if not config.seeds:
        raise ValueError("--seeds: give at least one seed")
    if len(set(config.seeds)) != len(config.seeds):
        raise ValueError(f"--seeds has repeated seeds: {list(config.seeds)}")
    if not config.models:
        raise ValueError("no model given (--model=ecoset|imagenet|both)")
    labels = [label for label, _ in config.models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must differ, got {labels}")


def _layout_help(root: Path) -> str:
    return (
        "Expected either the Peterson et al. (2018) layout\n"
        f"  {root}/<category>/images/*.jpg|png   and   {root}/<category>/sim_judgements/*.mat\n"
        "(categories: animals, automobiles, fruits, furniture, various, vegetables), or a plain "
        "dataset: --data_dir=<folder of images> --matrix=<n x n .npy or .csv> "
        "[--kind=similarity|dissimilarity]."
    )


def load_datasets(config: Aim1Config) -> list[tuple[str, Any]]:
    """The datasets a run will use, fully checked (matrix, images) before any output exists.

    Returns:
      ``(key, Dataset)`` pairs: the key names output folders and finds the paper's numbers
      (the Peterson category folder, e.g. ``'automobiles'``; a plain dataset's name).

    Raises:
      FileNotFoundError: missing data directory, category or file (the message lists what
        exists and the layout expected).
      ValueError: a bad matrix (size, NaN) or an unreadable image, naming the file.
    """
    root = Path(config.data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist.\n{_layout_help(root)}")
    if config.matrix is not None:
        if config.datasets:
            raise ValueError("--datasets selects Peterson categories; it cannot be combined "
                             "with --matrix (a plain dataset)")
        ds = ds_lib.load_plain(root, config.matrix, kind=config.kind,
                               symmetrize=config.symmetrize, name=config.name)
        found = [(ds.name.replace("/", "_").replace("\\", "_"), ds)]
    else:
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        wanted = list(config.datasets) if config.datasets else None
        if wanted:
            missing = [c for c in wanted if c not in present]
            if missing:
                raise FileNotFoundError(
                    f"{root}: no category folder {', '.join(missing)}; it has "
                    f"{', '.join(present) or 'no folders'}.\n{_layout_help(root)}")
        try:
            loaded = ds_lib.load_peterson(root, wanted, symmetrize=config.symmetrize)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}\n{_layout_help(root)}") from e
        found = list(loaded.items())
    # The loaders checked the matrices (size, finite, symmetric); here, what the run needs too.
    for _, ds in found:
        n = len(ds.image_paths)
        if n < 2 * config.folds:
            raise ValueError(f"dataset {ds.name!r} ({ds.image_paths[0].parent}) has {n} "
                             f"images: too few for {config.folds} folds")
        shapes = {}
        for p in tqdm(ds.image_paths, desc=f"checking {ds.name} images", unit="img",
                      disable=n < 64):
            img = open_rgb(p)  # raises ValueError naming an unreadable file
            shapes.setdefault(resized_shape(img.height, img.width, config.image_size), p)
        if len(shapes) > 1:
            (s0, p0), (s1, p1) = list(shapes.items())[:2]
            raise ValueError(f"{p1}: resized to {s1} (H, W) but {p0} to {s0}; the images of a "
                             "dataset must share one aspect ratio (crop them first)")
    return found


def load_models(config: Aim1Config) -> list[LoadedModel]:
    """Loads every model's converted weights (MissingWeightsError says how to make them)."""
    models = []
    for label, source in config.models:
        params, metadata = load_vgg16(source)
        models.append(LoadedModel(label, str(source), params, metadata["source_sha256"],
                                  dict(metadata)))
    return models


# ---------------------------------------------------------------------------------------------
# One fold.


def _floats(x: np.ndarray) -> list:
    """A float array as a JSON list, NaN as null (JSON has no NaN)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(x, np.float64).ravel()]


def _unfloats(x: Sequence) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x], np.float64)


def run_fold(head_params: Any, blocks: np.ndarray, sims: Any, human: np.ndarray, fold: Fold,
             *, score: str, chunk_maps: int | None = None) -> dict:
    """Selection on the training images of one fold, scored on its test images.

    Args:
      head_params: the VGG-16 head parameters.
      blocks: ``[n, 512, 49]`` pooled fc6 inputs of all images.
      sims: `ais_jax.ablation.AblationSimilarities` of all images (its ``[train, train]``
        submatrices are exactly the ablations of the training images alone).
      human: ``[n, n]`` human similarity.
      fold: the split.
      score: ``'r2'`` or ``'rho'``.
      chunk_maps: maps per greedy step.

    Returns:
      JSON-ready dict: training AIS, train/test curves, ``set_size`` = |S*| (maps kept), Full
      and Retained train/test scores, the fold's image indices.
    """
    ais = np.asarray(global_ais(sims, human, images=fold.train, score=score))  # [512]
    order = np.asarray(rank_maps(ais))
    result = greedy_curves(head_params, blocks, order, human, train=fold.train,
                           test=fold.test, score=score, chunk_maps=chunk_maps)
    train_curve = np.asarray(result.train_curve, np.float64)  # [512]
    test_curve = np.asarray(result.test_curve, np.float64)  # [512]
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
        "ais_train": _floats(ais),
        "order": order.tolist(),
        "train_curve": _floats(train_curve),
        "test_curve": _floats(test_curve),
        "set_size": size,
        "nan_prefixes": int(np.isnan(train_curve).sum()),
        "full_train": full_score(fold.train),
        "full_test": full_score(fold.test),
        "retained_train": float(train_curve[size - 1]),
        "retained_test": float(test_curve[size - 1]),
    }


# ---------------------------------------------------------------------------------------------
# One (model, dataset).


def _versions() -> dict:
    return {
        "ais_jax": ais_jax.__version__, "jax": jax.__version__, "flax": flax.__version__,
        "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version(),
        "preprocess_version": PREPROCESS_VERSION, "fold_format_version": FOLD_FORMAT_VERSION,
        "backend": jax.default_backend(),
    }


def _csv_text(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


FOLD_COLUMNS = ("seed", "fold", "set_size", "full_train", "retained_train", "full_test",
                "retained_test", "nan_prefixes")


def run_dataset(model: LoadedModel, key: str, ds: Any, config: Aim1Config, *,
                on_fold: Callable[[dict], None] | None = None) -> dict:
    """All folds of one model on one dataset; writes its folder and returns its results row."""
    out = Path(config.out) / model.label / key
    tag = f"{model.label}/{key}"
    acts = activations.cached_activations(
        model.params["trunk"], model.checkpoint_sha256, ds.image_paths,
        image_size=config.image_size, batch_size=config.batch_size, desc=f"{tag} trunk")
    blocks = np.asarray(activations.blocks_from_acts(acts.value))  # [n, 512, 49]
    sims = activations.cached_similarities(model.params["head"], blocks, acts.path.stem,
                                           chunk_maps=config.chunk_maps)
    human = np.asarray(ds.similarity, np.float64)
    n = human.shape[0]

    ais_all = np.asarray(global_ais(sims.value, human, score=config.score), np.float64)
    storage.write_npy(out / "global_ais.npy", ais_all)

    # Everything a finished fold depends on; a fold file with another key is recomputed.
    run_key = activations.cache_key(
        activations=acts.path.stem, human=_digest(human),
        score=config.score, k=config.folds, version=FOLD_FORMAT_VERSION)
    folds = crossval.cv_folds(n, tuple(config.seeds), config.folds)
    records, resumed = [], 0
    for fold in tqdm(folds, desc=f"{tag} folds", unit="fold"):
        path = out / "folds" / f"seed{fold.seed}_fold{fold.index}.json"
        record = _read_fold(path, run_key)
        if record is None:
            record = run_fold(model.params["head"], blocks, sims.value, human, fold,
                              score=config.score, chunk_maps=config.chunk_maps)
            record["run_key"] = run_key
            storage.write_json(path, record)
        else:
            resumed += 1
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
    }
    storage.write_text(out / "folds.csv", _csv_text(records, FOLD_COLUMNS))
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
        "versions": _versions(),
    })
    return {**row, "global_ais": ais_all, "folds_resumed": resumed,
            "cache_hits": {"activations": acts.hit, "similarities": sims.hit}}


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, np.float64).tobytes()).hexdigest()


def _read_fold(path: Path, run_key: str) -> dict | None:
    """A finished fold's record, or None if absent, unreadable or from another run."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable; recomputing this fold", path)
        return None
    return record if record.get("run_key") == run_key else None


# ---------------------------------------------------------------------------------------------
# Across datasets.


def ais_correlations(rows: Sequence[dict]) -> list[dict]:
    """Pearson correlation of the 512-long global AIS vectors for each pair of datasets.

    Args:
      rows: results rows with ``model``, ``dataset`` and ``global_ais`` ``[512]``.

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
      'files': {...}}``; rows also hold ``global_ais`` ``[512]`` and cache/resume counts.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input, before anything is written.
    """
    _check_config(config)
    datasets = load_datasets(config)
    models = load_models(config)
    out = Path(config.out)
    storage.write_json(out / "run.json", {
        "config": dataclasses.asdict(config),
        "checkpoints": {m.label: {"source": m.source, "source_sha256": m.checkpoint_sha256,
                                  "metadata": m.metadata} for m in models},
        "datasets": {key: d.manifest() for key, d in datasets},
        "versions": _versions(),
    })
    rows = [run_dataset(m, key, d, config, on_fold=on_fold) for m in models
            for key, d in datasets]
    correlations = ais_correlations(rows)
    public = [{k: v for k, v in r.items() if k in RESULT_COLUMNS} for r in rows]
    storage.write_json(out / "results.json", {"se_formula": crossval.SE_FORMULA, "rows": public})
    storage.write_text(out / "results.csv", _csv_text(public, RESULT_COLUMNS))
    storage.write_json(out / "ais_correlations.json", correlations)
    storage.write_text(out / "ais_correlations.csv",
                       _csv_text(correlations, ("model", "a", "b", "r", "paper_r")))
    fig_rows = [{**r, "dataset": r["display_name"]} for r in rows]
    label = "Pearson's $R^2$" if config.score == "r2" else "Pearson's $\\rho$"
    figures.save_figure(figures.figure1(fig_rows, score_label=label), out / "figure1.png")
    storage.write_text(out / "summary.md", summary_markdown(rows, correlations, config, models))
    files = {name: out / name for name in ("summary.md", "figure1.png", "results.csv",
                                           "results.json", "ais_correlations.csv", "run.json")}
    return {"out": out, "rows": rows, "correlations": correlations, "files": files}
