"""Aim 2 end to end (SPEC §5, §7): per-image AIS heatmaps, overlays, Figure 2/3 statistics.

`run_aim2` is the library call behind ``python -m experiments.aim2``; it runs on the shared
study runner, so it reads (or fills) the same trunk-activation and ablation caches as Aim 1.
Output layout (under ``config.out``)::

    run.json                            config, checkpoints, datasets, versions
    summary.md                          our numbers beside the paper's
    models.csv / .json                  per (model, dataset): maps with positive mean, MAD, ...
    datasets.csv / .json                per dataset and pair of models: KS tests, Match, corr
    ais_correlations.csv / .json        cross-dataset Pearson of global AIS vectors (Aim 1's)
    match_<dataset>.csv                 per image: Match, entropies, maxEntropy (two models;
                                        with more, match_<dataset>_<a>_vs_<b>.csv per pair)
    figure2_<dataset>.png, figure3.png
    <model>/<dataset>/per_image_ais.npy     [n, M] float32 (M: the model's maps)
    <model>/<dataset>/heatmaps_grid.npy     [n, h, w] float32 raw heatmaps (zeros: undefined)
    <model>/<dataset>/image_ids.json        ids, original (H, W), grid shape, undefined ids
    <model>/<dataset>/undefined_heatmaps.json, per_image.csv, per_map.csv, global_ais.npy,
                     entropy.npy [n], aim2.json (the resume record)
    <model>/<dataset>/overlays/<id>.png     image + jet heatmap (min-max scaled), RGB
    <model>/<dataset>/heatmaps_full/<id>.npz   original-size map ('heat' [H, W]) on request

A (model, dataset) whose record matches (same checkpoint, images, size, human matrix and
format) is read back instead of recomputed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from tqdm.auto import tqdm

from ais_jax import resume, storage
from ais_jax.data.images import PREPROCESS_VERSION, open_rgb
from ais_jax.engine import activations
from ais_jax.engine.ais import global_ais
from ais_jax.explain import heatmaps as hm
from ais_jax.explain.overlay import overlay, write_png
from ais_jax.report import aim2_figures, paper
from ais_jax.report.tables import csv_text, json_float
from ais_jax.stats import heatmap_stats as st
from ais_jax.study.aim1 import ais_correlations
from ais_jax.study.config import StudyConfig
from ais_jax.study.item import StudyItem
from ais_jax.study.runner import Aim, Study, rows_by_dataset, run_study

log = logging.getLogger(__name__)

# Bump when the per-(model, dataset) outputs change meaning; older records are recomputed.
# 2: the record names every input of the heatmaps (`heatmap_inputs`), for Aim 3's reuse.
AIM2_FORMAT_VERSION = 2
FULL_MAPS = ("none", "examples", "all")


@dataclasses.dataclass(frozen=True)
class Aim2Config(StudyConfig):
    """What one Aim 2 run does: the shared `StudyConfig` fields plus these.

    Attributes:
      overlays: overlay PNGs per (model, dataset): None = every image, 0 = none, k = the
        first k images in dataset order.
      full_maps: original-size heatmaps to save as ``.npz``: ``'none'``, ``'examples'`` (the
        Figure 2 images) or ``'all'`` (mind the disk: 500x500 float32 is 1 MB per map).
      full_dtype: ``'float32'`` or ``'float16'`` for those files.
      examples: images per dataset in Figure 2 (highest, median, lowest Match for 3).
      colormap: overlay colormap (matplotlib name).
      image_weight: weight of the image in the overlays.
      global_score: score of the global AIS whose cross-dataset correlations are reported
        (``'r2'``, Aim 1's default, or ``'rho'``).
    """

    overlays: int | None = None
    full_maps: str = "examples"
    full_dtype: str = "float32"
    examples: int = 3
    colormap: str = "jet"
    image_weight: float = 0.5
    global_score: str = "r2"

    def validate(self) -> None:
        if self.overlays is not None and self.overlays < 0:
            raise ValueError(f"--overlays must be >= 0 (or 'all'), got {self.overlays}")
        if self.full_maps not in FULL_MAPS:
            raise ValueError(f"--full_maps must be one of {', '.join(FULL_MAPS)}, "
                             f"got {self.full_maps!r}")
        if self.full_dtype not in ("float32", "float16"):
            raise ValueError(f"--full_dtype must be float32 or float16, got {self.full_dtype!r}")
        if self.examples < 1:
            raise ValueError(f"--examples must be at least 1, got {self.examples}")
        if not 0.0 <= self.image_weight <= 1.0:
            raise ValueError(f"--image_weight must be in [0, 1], got {self.image_weight}")
        if self.global_score not in ("r2", "rho"):
            raise ValueError(f"global_score must be 'r2' or 'rho', got {self.global_score!r}")
        # A bad colormap fails here, not after the heatmaps are computed.
        if self.colormap not in matplotlib.colormaps:
            raise ValueError(f"--colormap: unknown matplotlib colormap {self.colormap!r}")
        super().validate()


def file_ids(image_ids: Sequence[str]) -> list[str]:
    """Names for per-image files: the image stems, or the full names if stems collide."""
    stems = [Path(i).stem for i in image_ids]
    return stems if len(set(stems)) == len(stems) else list(image_ids)


# What each entry of `heatmap_inputs` is, for the message when Aim 3 finds one that differs.
HEATMAP_INPUTS = {
    "images_sha256": "the images (names and bytes)",
    "matrix_sha256": "the human matrix (after --kind and --symmetrize)",
    "kind": "--kind",
    "symmetrized": "--symmetrize",
    "weights_tensors_sha256": "the checkpoint's tensors",
    "image_size": "the input size",
    "preprocess_version": "the preprocessing version",
    "activation_cache_version": "the activation cache version",
    "ablation_cache_version": "the ablation cache version",
    "aim2_format_version": "the Aim 2 format version",
}


def heatmap_inputs(item: StudyItem) -> dict:
    """Everything an item's heatmaps depend on, as Aim 2 records it in ``aim2.json``.

    Aim 3 reuses an Aim 2 folder's heatmaps only when its own item gives the same dict.
    """
    ds = item.dataset
    return {
        "images_sha256": activations.images_digest(ds.image_paths),
        "matrix_sha256": resume.digest(item.human), "kind": ds.kind,
        "symmetrized": bool(ds.symmetrized), "weights_tensors_sha256": item.weights_sha256,
        "image_size": int(item.config.image_size), "preprocess_version": PREPROCESS_VERSION,
        "activation_cache_version": activations.ACTIVATION_CACHE_VERSION,
        "ablation_cache_version": activations.ABLATION_CACHE_VERSION,
        "aim2_format_version": AIM2_FORMAT_VERSION,
    }


def _run_key(item: StudyItem) -> str:
    # The activation key is a hash of the weights' tensors, images, preprocessing and size:
    # cheap, so a finished item is recognised without touching the cache.
    acts_key = activations.activation_key(item.weights_sha256, item.dataset.image_paths,
                                          item.config.image_size, arch=item.model.arch)
    cfg = item.config
    # The overlay settings are part of the key so that changing them redraws the overlays.
    return resume.run_key(activations=acts_key, human=resume.digest(item.human),
                          global_score=cfg.global_score, overlays=cfg.overlays,
                          full_maps=cfg.full_maps == "all", full_dtype=cfg.full_dtype,
                          colormap=cfg.colormap, image_weight=cfg.image_weight,
                          version=AIM2_FORMAT_VERSION)


def _overlay_ids(item: StudyItem) -> list[int]:
    n = item.dataset.n
    k = n if item.config.overlays is None else min(item.config.overlays, n)
    return list(range(k))


def write_overlays(item: StudyItem, maps: hm.Heatmaps, indices: Sequence[int]) -> None:
    """One overlay PNG per image in ``indices``: the image with its min-max scaled heatmap."""
    cfg = item.config
    names = file_ids(maps.image_ids)
    for i in tqdm(indices, desc=f"{item.tag} overlays", unit="img", disable=len(indices) < 16):
        rgb = np.asarray(open_rgb(item.dataset.image_paths[i]))  # [H, W, 3] uint8
        heat = hm.minmax_scale(maps.original(i))
        write_png(item.out / "overlays" / f"{names[i]}.png",
                  overlay(rgb, heat, colormap=cfg.colormap, image_weight=cfg.image_weight))


def write_full_maps(folder: Path, maps: hm.Heatmaps, indices: Sequence[int], dtype: str) -> None:
    """Original-size raw heatmaps as ``heatmaps_full/<id>.npz`` (key ``heat`` [H, W])."""
    names = file_ids(maps.image_ids)
    for i in indices:
        with storage.atomic_path(folder / "heatmaps_full" / f"{names[i]}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, heat=maps.original(i).astype(dtype),
                                    image_id=np.array(maps.image_ids[i]))


def run_item(item: StudyItem) -> dict:
    """Aim 2 for one (model, dataset): AIS, heatmaps, overlays, per-image and per-map tables."""
    out, cfg, key = item.out, item.config, _run_key(item)
    record = resume.read_record(out / "aim2.json", key)
    files = [out / n for n in (hm.AIS_FILE, hm.GRID_FILE, hm.IDS_FILE, "entropy.npy",
                               "global_ais.npy")]
    if record is not None and all(f.exists() for f in files):
        maps = hm.read_heatmaps(out)
        entropy = np.load(out / "entropy.npy")
        gais = np.load(out / "global_ais.npy")
        resumed = True
    else:
        maps = hm.heatmaps_for_item(item)
        entropy = st.softmax_entropy(item.logits)
        gais = np.asarray(global_ais(item.similarities.value, item.human,
                                     score=cfg.global_score), np.float64)
        # Per-image files of an earlier run go first: none may sit beside the new tables.
        resume.remove_tree(out / "overlays")
        if cfg.full_maps == "all":
            resume.remove_tree(out / "heatmaps_full")
        _write_item(item, maps, entropy, gais)
        write_overlays(item, maps, _overlay_ids(item))
        if cfg.full_maps == "all":
            write_full_maps(out, maps, range(len(maps.image_ids)), cfg.full_dtype)
        record = resume.write_record(out / "aim2.json", {
            "model": item.model.label, "dataset": item.key,
            "checkpoint_sha256": item.model.checkpoint_sha256, "cache": item.cache_report(),
            "n_images": len(maps.image_ids), "undefined": maps.undefined_ids,
            "heatmap_inputs": heatmap_inputs(item)}, key)
        resumed = False
    means = st.map_mean_ais(maps.ais)
    mad = st.image_mad(maps.ais)
    return {
        "model": item.model.label, "dataset": item.key, "display_name": item.dataset.name,
        "architecture": item.model.arch.name,
        "n_images": len(maps.image_ids), "n_undefined": len(maps.undefined_ids),
        "n_positive_map_means": int((means > 0).sum()),
        "max_map_mean": float(means.max()), "median_map_mean": float(np.median(means)),
        "mean_mad": float(mad.mean()), "median_mad": float(np.median(mad)),
        "grid_h": int(maps.grid.shape[1]), "grid_w": int(maps.grid.shape[2]),
        "resumed": resumed, "cache": record["cache"],
        # arrays for the across-datasets step
        "heatmaps": maps, "map_means": means, "mad": mad, "entropy": entropy,
        "global_ais": gais, "image_paths": item.dataset.image_paths, "folder": out,
    }


def _write_item(item: StudyItem, maps: hm.Heatmaps, entropy: np.ndarray,
                gais: np.ndarray) -> None:
    out = item.out
    storage.write_npy(out / hm.AIS_FILE, maps.ais)
    storage.write_npy(out / hm.GRID_FILE, maps.grid)
    storage.write_npy(out / "entropy.npy", entropy)
    storage.write_npy(out / "global_ais.npy", gais)
    undefined = maps.undefined_ids
    storage.write_json(out / "undefined_heatmaps.json", {
        "count": len(undefined), "image_ids": undefined,
        "why": "no positive per-image AIS: the heatmap is undefined and saved as zeros"})
    mad = st.image_mad(maps.ais)
    rows = [{"image_id": i, "height": s[0], "width": s[1], "defined": bool(d),
             "n_positive_ais": int((a > 0).sum()), "mad": float(m), "entropy": float(e)}
            for i, s, d, a, m, e in zip(maps.image_ids, maps.sizes, maps.defined, maps.ais,
                                        mad, entropy, strict=True)]
    storage.write_text(out / "per_image.csv", csv_text(rows, list(rows[0])))
    means = st.map_mean_ais(maps.ais)
    storage.write_text(out / "per_map.csv", csv_text(
        [{"map": k, "mean_ais": float(v)} for k, v in enumerate(means)], ("map", "mean_ais")))
    # The manifest goes last: read_heatmaps needs it, so its presence means the arrays exist.
    storage.write_json(out / hm.IDS_FILE, {
        "image_ids": list(maps.image_ids), "files": file_ids(maps.image_ids),
        "sizes": [list(s) for s in maps.sizes], "grid_shape": list(maps.grid.shape[1:]),
        "undefined": undefined, "model": item.model.label, "dataset": item.key,
        "heatmap": "w_ik = max(AIS_ik, 0) / sum_k max(AIS_ik, 0); heat_i = sum_k w_ik A_i[:, :, k]"
                   f" at the {item.model.arch.ablated_layer} grid; raw floats, no display "
                   "scaling"})


# ---------------------------------------------------------------------------------------------
# Across models and datasets.


def choose_examples(match: np.ndarray | None, n: int, k: int) -> tuple[list[int], str]:
    """Figure 2's images: evenly spaced ranks of Match, highest first (or of dataset order).

    Args:
      match: ``[n]`` Match scores (NaN = undefined, never chosen), or None with one model.
      n: number of images.
      k: images wanted.

    Returns:
      (indices, a sentence saying how they were chosen).
    """
    if match is None:
        order = np.arange(n)
        how = "evenly spaced in dataset order (one model: no Match score)"
    else:
        ok = np.flatnonzero(np.isfinite(match))
        order = ok[np.argsort(-match[ok], kind="stable")]
        how = ("highest, median and lowest Match" if k == 3 else
               f"{k} evenly spaced ranks of Match, from highest to lowest")
    if order.size == 0:
        return [], "no image has a defined Match"
    pos = np.unique(np.round(np.linspace(0, order.size - 1, min(k, order.size))).astype(int))
    return [int(order[p]) for p in pos], how


def cross_model(rows: Sequence[dict]) -> dict:
    """KS tests, Match, maxEntropy and their summary for two models of one dataset.

    The models may differ in architecture: the KS tests compare distributions (of however
    many maps each has), and Match correlates the two heatmaps at the image's original size.
    """
    a, b = rows
    maps_a, maps_b = a["heatmaps"], b["heatmaps"]
    if maps_a.image_ids != maps_b.image_ids:
        raise ValueError(f"{a['dataset']}: the two models' image lists differ")
    n = len(maps_a.image_ids)
    match = np.array([st.pearson_maps(maps_a.original(i), maps_b.original(i))
                      for i in tqdm(range(n), desc=f"{a['dataset']} match", unit="img",
                                    disable=n < 64)])
    max_ent = np.maximum(a["entropy"], b["entropy"])
    ks_mean = st.ks_test(a["map_means"][a["map_means"] > 0], b["map_means"][b["map_means"] > 0])
    ks_mad = st.ks_test(a["mad"], b["mad"])
    desc = st.describe_match(match, max_ent)
    # The paper's numbers are VGG-16's (Ecoset vs ImageNet); no other pair is beside them.
    vgg = a.get("architecture", "vgg16") == b.get("architecture", "vgg16") == "vgg16"
    ref = (paper.aim2(a["dataset"]) or {}) if vgg else {}
    return {
        "dataset": a["dataset"], "display_name": a["display_name"],
        "model_a": a["model"], "model_b": b["model"], "n_images": n,
        "ks_mean_ais_statistic": ks_mean["statistic"], "ks_mean_ais_p": ks_mean["p"],
        "ks_mad_statistic": ks_mad["statistic"], "ks_mad_p": ks_mad["p"],
        "match_median": desc["median"], "match_sd": desc["sd"], "match_n": desc["n"],
        "match_undefined": desc["n_undefined"],
        "match_entropy_r": desc["r"], "match_entropy_p": desc["p"],
        "paper_match_median": ref.get("match_median"), "paper_match_sd": ref.get("match_sd"),
        "paper_match_entropy_r": ref.get("match_entropy_r"),
        "match": match, "max_entropy": max_ent,
    }


MODEL_COLUMNS = ("model", "dataset", "display_name", "n_images", "n_undefined",
                 "n_positive_map_means", "max_map_mean", "median_map_mean", "mean_mad",
                 "median_mad", "grid_h", "grid_w", "resumed")
DATASET_COLUMNS = ("dataset", "display_name", "model_a", "model_b", "n_images",
                   "ks_mean_ais_statistic", "ks_mean_ais_p", "ks_mad_statistic", "ks_mad_p",
                   "match_median", "match_sd", "match_n", "match_undefined", "match_entropy_r",
                   "match_entropy_p", "paper_match_median", "paper_match_sd",
                   "paper_match_entropy_r")


def _public(row: dict, columns: Sequence[str]) -> dict:
    return {k: (json_float(v) if isinstance(v, float) else v) for k, v in row.items()
            if k in columns}


def write_outputs(study: Study, rows: list[dict]) -> dict:
    """Aim 2's across-datasets step: statistics tables, Figures 2 and 3, summary.md."""
    cfg, out = study.config, study.out
    by_ds = rows_by_dataset(rows)
    crosses, pairs, examples, match_files = {}, {}, {}, set()
    for key, ds_rows in by_ds.items():
        # Every two models of the dataset, in model order; the first pair picks Figure 2's
        # examples and fills Figure 3's Match panel.
        pairs[key] = [cross_model(pair) for pair in itertools.combinations(ds_rows, 2)]
        cross = pairs[key][0] if pairs[key] else None
        for c in pairs[key]:
            two = [r for r in ds_rows if r["model"] in (c["model_a"], c["model_b"])]
            ids = ds_rows[0]["heatmaps"].image_ids
            table = [{"image_id": i, "match": json_float(m),
                      **{f"entropy_{r['model']}": float(r["entropy"][j]) for r in two},
                      "max_entropy": float(e)}
                     for j, (i, m, e) in enumerate(zip(ids, c["match"], c["max_entropy"],
                                                       strict=True))]
            name = (f"match_{key}.csv" if len(ds_rows) == 2 else
                    f"match_{key}_{c['model_a']}_vs_{c['model_b']}.csv")
            storage.write_text(out / name, csv_text(table, list(table[0])))
            match_files.add(name)
        if cross is not None:
            crosses[key] = cross
        idx, how = choose_examples(cross["match"] if cross else None, ds_rows[0]["n_images"],
                                   cfg.examples)
        examples[key] = (idx, how)
        for r in ds_rows:
            if cfg.full_maps == "examples":
                write_full_maps(r["folder"], r["heatmaps"], idx, cfg.full_dtype)
                names = file_ids(r["heatmaps"].image_ids)
                resume.prune(r["folder"] / "heatmaps_full", {f"{names[i]}.npz" for i in idx})
            elif cfg.full_maps == "none":
                resume.remove_tree(r["folder"] / "heatmaps_full")
        fig = aim2_figures.figure2(
            [np.asarray(open_rgb(ds_rows[0]["image_paths"][i])) for i in idx],
            {r["model"]: [hm.minmax_scale(r["heatmaps"].original(i)) for i in idx]
             for r in ds_rows},
            titles=[ds_rows[0]["heatmaps"].image_ids[i] +
                    (f"\nMatch {cross['match'][i]:.2f}" if cross else "") for i in idx],
            colormap=cfg.colormap, image_weight=cfg.image_weight,
            suptitle=f"{ds_rows[0]['display_name']}: {how}")
        aim2_figures.save(fig, out / f"figure2_{key}.png")
    fig = aim2_figures.figure3(
        [{"dataset": ds_rows[0]["display_name"],
          "map_means": {r["model"]: r["map_means"] for r in ds_rows},
          "mad": {r["model"]: r["mad"] for r in ds_rows},
          "match": crosses[k]["match"] if k in crosses else None,
          "max_entropy": crosses[k]["max_entropy"] if k in crosses else None}
         for k, ds_rows in by_ds.items()])
    aim2_figures.save(fig, out / "figure3.png")
    # Per-dataset files of datasets this run does not have would look current: removed.
    resume.prune(out, {f"figure2_{k}.png" for k in by_ds} | match_files,
                 patterns=("figure2_*.png", "match_*.csv"))

    correlations = ais_correlations(rows)
    models = [_public(r, MODEL_COLUMNS) for r in rows]
    datasets = [_public(c, DATASET_COLUMNS) for ds_pairs in pairs.values() for c in ds_pairs]
    storage.write_json(out / "models.json", models)
    storage.write_text(out / "models.csv", csv_text(models, MODEL_COLUMNS))
    storage.write_json(out / "datasets.json", datasets)
    storage.write_text(out / "datasets.csv", csv_text(datasets, DATASET_COLUMNS))
    storage.write_json(out / "ais_correlations.json", correlations)
    storage.write_text(out / "ais_correlations.csv",
                       csv_text(correlations, ("model", "a", "b", "r", "paper_r")))
    text = summary_markdown(study, rows, pairs, examples, correlations)
    storage.write_text(out / "summary.md", text)
    return {"out": out, "rows": rows, "datasets": crosses, "pairs": pairs,
            "examples": examples, "correlations": correlations, "summary": text}


def _f(x, digits: int = 2, fmt: str = "f") -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}{fmt}}"


def _paper_match(c: dict) -> str:
    if c["paper_match_median"] is None:
        return "–"
    return f"{c['paper_match_median']:.2f} ± {c['paper_match_sd']:.2f}"


def _grid_words(study: Study) -> str:
    """``'the conv5_3 grid'``, or each model's layer when the models ablate different ones."""
    layers = {m.label: m.arch.ablated_layer for m in study.models}
    if len(set(layers.values())) == 1:
        return f"the {next(iter(layers.values()))} grid"
    return ("the ablated layer's grid (" + ", ".join(f"{label}: {layer}" for label, layer
                                                      in layers.items()) + ")")


def summary_markdown(study: Study, rows: Sequence[dict], pairs: dict, examples: dict,
                     correlations: Sequence[dict]) -> str:
    """The run's summary: per-model descriptives, cross-model statistics beside the paper's.

    ``pairs``: dataset key -> the `cross_model` results of every two models (model order).
    """
    cfg = study.config
    lines = [cfg.preamble.rstrip(), ""] if cfg.preamble else []
    lines += [
        "# Aim 2: per-image AIS heatmaps", "",
        "Heatmap: w_ik = max(AIS_ik, 0) normalised to sum 1, heat_i = Σ_k w_ik A_i[:, :, k] at "
        f"{_grid_words(study)}, upsampled (OpenCV bilinear) to the image's size. Saved maps "
        "are raw; overlays and figures scale each map to [0, 1] (min–max) for display.",
        "Checkpoints: " + "; ".join(f"{m.label} = {m.source} (source sha256 "
                                    f"{m.checkpoint_sha256[:12]}…)" for m in study.models) + ".",
        "",
        "## Per model and dataset", "",
        "| model | dataset | n | undefined heatmaps | maps with mean AIS > 0 | max mean AIS "
        "| mean MAD | grid |", "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['display_name']} | {r['n_images']} "
                     f"| {r['n_undefined']} | {r['n_positive_map_means']} "
                     f"/ {r['map_means'].size} "
                     f"| {_f(r['max_map_mean'], 3, 'g')} | {_f(r['mean_mad'], 3, 'g')} "
                     f"| {r['grid_h']}×{r['grid_w']} |")
    undefined = [(r["model"], r["display_name"], r["heatmaps"].undefined_ids) for r in rows
                 if r["n_undefined"]]
    for model, name, ids in undefined:
        lines.append(f"\nUndefined heatmaps ({model}, {name}; no positive AIS, saved as zeros): "
                     + ", ".join(ids))
    lines += ["", "Paper (SPEC §7): " + "; ".join(paper.AIM2_STATEMENTS) + ".", ""]
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for ds_pairs in pairs.values():
        for c in ds_pairs:
            by_pair.setdefault((c["model_a"], c["model_b"]), []).append(c)
    for n_pair, ((model_a, model_b), pair_rows) in enumerate(by_pair.items()):
        lines += [f"## {model_a} vs {model_b}", ""]
        if n_pair == 0:
            lines += [
                "KS: two-sample Kolmogorov–Smirnov (scipy.stats.ks_2samp) of the positive "
                "per-map mean AIS (the values the log10 histogram shows) and of the per-image "
                "MAD. Match: Pearson between the two heatmaps of an image at its original size; "
                "median ± SD (ddof = 1) over images with both heatmaps non-constant. maxEntropy: "
                "the larger softmax entropy (natural log) of the two models; r, p: Pearson "
                "corr(Match, maxEntropy).", ""]
        lines += [
            "| dataset | KS mean AIS (D, p) | KS MAD (D, p) | Match median ± SD | paper Match "
            "| r(Match, maxEntropy) | p | paper r |", "|---|---|---|---|---|---|---|---|",
        ]
        for c in pair_rows:
            lines.append(
                f"| {c['display_name']} | {_f(c['ks_mean_ais_statistic'])}, "
                f"{_f(c['ks_mean_ais_p'], 2, 'g')} | {_f(c['ks_mad_statistic'])}, "
                f"{_f(c['ks_mad_p'], 2, 'g')} | {_f(c['match_median'])} ± {_f(c['match_sd'])} "
                f"| {_paper_match(c)} "
                f"| {_f(c['match_entropy_r'])} | {_f(c['match_entropy_p'], 2, 'g')} "
                f"| {_f(c['paper_match_entropy_r'])} |")
        lines.append("")
    if len(by_pair) > 1:
        first = next(iter(by_pair))
        lines += [f"Figure 2's examples and Figure 3's Match panels use the first pair, "
                  f"{first[0]} vs {first[1]}.", ""]
    if not by_pair:
        lines += ["With one model the cross-model parts (KS tests Ecoset vs ImageNet, Match, "
                  "maxEntropy) are skipped: run with --model=both.", ""]
    lines += ["## Figure 2 examples", ""]
    for key, (idx, how) in examples.items():
        ids = rows_by_dataset(rows)[key][0]["heatmaps"].image_ids
        lines.append(f"* {key}: {', '.join(ids[i] for i in idx) or 'none'} ({how}).")
    if correlations:
        lines += ["", f"## Cross-dataset correlation of global AIS ({cfg.global_score}, all "
                  "images; as Aim 1)", "", "| model | dataset A | dataset B | r | paper r |",
                  "|---|---|---|---|---|"]
        for c in correlations:
            lines.append(f"| {c['model']} | {c['a']} | {c['b']} | {c['r']:.3f} "
                         f"| {_f(c['paper_r'])} |")
    lines += ["", "Files: models.csv/json, datasets.csv/json, match_<dataset>.csv, "
              "ais_correlations.csv/json, figure2_<dataset>.png, figure3.png, and per model and "
              "dataset per_image_ais.npy, heatmaps_grid.npy + image_ids.json, overlays/.", ""]
    return "\n".join(lines)


def aim2() -> Aim:
    """Aim 2 as a `ais_jax.study.runner.Aim`."""
    return Aim("aim2", run_item, write_outputs,
               versions={"aim2_format_version": AIM2_FORMAT_VERSION})


def run_aim2(config: Aim2Config) -> dict:
    """Runs Aim 2 for every model and dataset of ``config``; see the module docstring.

    Returns:
      ``{'out', 'rows' (per model and dataset, with 'heatmaps' `Heatmaps`), 'datasets'
      (cross-model statistics per dataset key), 'examples', 'correlations', 'summary'}``.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input, before anything is written.
    """
    return run_study(config, aim2())
