"""Aim 3 end to end (SPEC §6, §7, §11): AIS heatmaps vs saliency maps, on the shared runner.

`run_aim3` is the one library call behind ``python -m experiments.aim3``. Before anything is
written it loads and checks the datasets, matches a saliency map to every image of every dataset
(`ais_jax.explain.saliency_inputs`; before the weights are read, so that a missing map fails
fast) and loads the models. Then, for each (model, dataset), it gets the AIS heatmaps — read
from an Aim 2 output folder when one is given and holds them, otherwise computed through the
shared pipeline (cached activations and ablation similarities,
`ais_jax.explain.heatmaps.heatmaps_for_item`) — upsamples them to each image's (H, W) and
compares them with the saliency maps: relative risk at p = 5/10/15 %, CC, SIM, KLD and AUC, for
the AIS heatmap and for two null baselines in its place (a centre-bias Gaussian; the heatmap
against another image's saliency map). Output layout (under
``config.out``)::

    run.json                          config, checkpoints, datasets, versions
    table1.csv / table1.json          RR mean ± SD, median, inf/NaN counts; the paper's beside
    metrics.csv / metrics.json        every comparison per model x dataset x map source
    baseline_tests.csv / .json        Wilcoxon signed-rank of AIS vs each baseline
    figure4_<model>.png               k examples per dataset: top-p% contours and RR
    summary.md                        all of the above as text
    <model>/<dataset>/per_image.csv   one row per image and map source (ids beside values)
    <model>/<dataset>/aim3.json       the same as a resume record (reused when inputs match)
    <model>/<dataset>/figure4.png     that dataset's examples
    <model>/<dataset>/figure4/<id>.png  one per image, with ``per_image_figures``

Resuming: a (model, dataset) whose record matches (heatmaps, saliency maps and settings by
hash) is not recomputed. Every per-item file belongs to that record: a record that is replaced
takes the earlier run's per-image figures with it (removed before it is rewritten), per-image
figures are drawn again for a new record and removed when not asked for, and figures of models
no longer in the run go. An --out holding another aim's results (its run.json) is refused.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ais_jax import preflight, resume, storage
from ais_jax.data.images import open_rgb
from ais_jax.explain import baselines, compare
from ais_jax.explain import heatmaps as heatmaps_lib
from ais_jax.explain.saliency import MANIFEST as SALIENCY_MANIFEST
from ais_jax.explain.saliency_inputs import match_saliency, saliency_command
from ais_jax.report import aim3_figures, aim3_tables, figures
from ais_jax.report.tables import csv_text, json_float
from ais_jax.study.aim2 import HEATMAP_INPUTS, heatmap_inputs
from ais_jax.study.config import StudyConfig
from ais_jax.study.inputs import load_datasets, load_models
from ais_jax.study.item import StudyItem
from ais_jax.study.runner import Aim, Study, run_study

log = logging.getLogger(__name__)

# Bump when a record's meaning changes; records with another version are recomputed.
# 2: records the maps shifted for KLD (negative values); per-image figures keyed to the record.
RECORD_VERSION = 2
RECORD_FILE = "aim3.json"
SOURCES = ("ais", "centre_bias", "mismatched")
SOURCE_HELP = {
    "ais": "the AIS heatmap",
    "centre_bias": "a centre-bias Gaussian in the heatmap's place",
    "mismatched": "the heatmap against another image's saliency map (seeded derangement)",
}


@dataclasses.dataclass(frozen=True)
class Aim3Config(StudyConfig):
    """What one Aim 3 run does, beyond the shared `StudyConfig`.

    Attributes:
      saliency_dir: the saliency maps: one folder per dataset (``<saliency_dir>/<dataset
        key>/``, as ``python -m experiments.saliency`` writes for each category), or, for a
        plain dataset (``matrix``), the folder of its maps itself. Required.
      aim2_dir: an Aim 2 results folder whose ``<model>/<dataset>/`` heatmaps to reuse, only
        if Aim 2 recorded the same inputs (`aim2_heatmaps`; else refused, naming what differs).
        None, or a dataset without heatmaps there: computed through the shared, cached
        pipeline. A folder that does not exist, or is not an Aim 2 run, is an error.
      percents: the p of the top-p% regions.
      centre_sd: SD of the centre-bias baseline, as a fraction of the shorter side.
      mismatch_seed: seed of the mismatched-pairs derangement.
      examples: images per dataset in the Figure 4 grids.
      per_image_figures: also write one Figure 4 panel per image.
    """

    saliency_dir: str = ""
    aim2_dir: str | None = None
    percents: tuple[float, ...] = compare.PERCENTS
    centre_sd: float = baselines.CENTRE_BIAS_SD
    mismatch_seed: int = 0
    examples: int = 4
    per_image_figures: bool = False

    def validate(self) -> None:
        super().validate()
        if not self.saliency_dir:
            raise ValueError("--saliency_dir is required: the folder of saliency maps (make "
                             "them with python -m experiments.saliency --data_dir=<images> "
                             "--out=<folder>)")
        self.validate_settings()
        if self.aim2_dir is not None:
            root = Path(self.aim2_dir).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(f"--aim2_dir={self.aim2_dir}: no such folder (an Aim 2 "
                                        "results folder; drop --aim2_dir to compute the "
                                        "heatmaps)")
            found = preflight.recorded_aim(root)
            if found != "aim2":
                what = "no run.json" if found is None else f"the results of {found}"
                raise ValueError(f"--aim2_dir={self.aim2_dir} holds {what}, not an Aim 2 run "
                                 "(python -m experiments.aim2 --out=<folder>)")

    def validate_settings(self) -> None:
        """The comparison settings alone (the demo checks them before its Aim 2 step)."""
        if not self.percents or not all(0 < p < 100 for p in self.percents):
            raise ValueError(f"--percents must be percentages in (0, 100), got {self.percents}")
        if len(set(self.percents)) != len(self.percents) or len(self.percents) > 4:
            raise ValueError(f"--percents: at most 4 distinct values, got {self.percents}")
        if not self.centre_sd > 0:
            raise ValueError(f"--centre_sd must be positive, got {self.centre_sd}")
        if self.examples < 1:
            raise ValueError(f"--examples must be at least 1, got {self.examples}")
        if self.mismatch_seed < 0:
            raise ValueError(f"--mismatch_seed must be a non-negative integer (a NumPy seed), "
                             f"got {self.mismatch_seed}")

    def min_images(self) -> tuple[int, str]:
        return 3, "per-image AIS and the mismatched-pairs baseline"


def saliency_folder(config: Aim3Config, key: str) -> Path:
    """Where a dataset's saliency maps are.

    Peterson categories: ``<saliency_dir>/<category>``. A plain dataset (``matrix``):
    ``<saliency_dir>/<key>`` if that folder exists, else ``saliency_dir`` itself.
    """
    root = Path(config.saliency_dir).expanduser()
    if config.matrix is None or (root / key).is_dir():
        return root / key
    return root


def _image_dir(item_or_ds) -> Path:
    ds = getattr(item_or_ds, "dataset", item_or_ds)
    return ds.image_paths[0].parent


def _check_manifest(folder: Path, ds) -> None:
    """Maps written by experiments.saliency record each image's sha256: they must match."""
    path = folder / SALIENCY_MANIFEST
    if not path.is_file():
        return  # the user's own maps
    from ais_jax.explain.saliency import file_sha256  # noqa: PLC0415  (the hash write_saliency_maps used)

    manifest = preflight.read_json(path, "a saliency manifest")
    recorded = manifest.get("image_sha256", {}) if isinstance(manifest, dict) else None
    if not isinstance(recorded, dict):
        raise ValueError(f"{path}: not a saliency manifest (no image_sha256 table)")
    stale = [p.name for p in ds.image_paths
             if p.stem in recorded and recorded[p.stem] != file_sha256(p)]
    if stale:
        shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10
                                         else "")
        raise ValueError(f"{folder}: saliency maps of {len(stale)} image(s) were made from "
                         f"other images of the same name: {shown}. Remake them with: "
                         f"{saliency_command(_image_dir(ds), folder)}")


def _sizes(ds) -> list[tuple[int, int]]:
    sizes = []
    for p in ds.image_paths:
        img = open_rgb(p)
        sizes.append((img.height, img.width))
    return sizes


def _refuse_images_as_maps(folder: Path, ds) -> None:
    """--saliency_dir must not be the image folder, nor hold the images themselves."""
    if folder.is_dir() and folder.resolve() == _image_dir(ds).resolve():
        raise ValueError(f"--saliency_dir: {folder} is the image folder of dataset {ds.name}, "
                         "not a folder of saliency maps. Make the maps with: "
                         f"{saliency_command(_image_dir(ds), '<maps folder>')}")
    same = []
    for p in ds.image_paths:
        for q in folder.glob(f"{glob.escape(p.stem)}.*") if folder.is_dir() else ():
            if q.is_file() and q.stat().st_size == p.stat().st_size and (
                    q.read_bytes() == p.read_bytes()):
                same.append(q.name)
    if same:
        shown = ", ".join(same[:5]) + (f" and {len(same) - 5} more" if len(same) > 5 else "")
        raise ValueError(f"--saliency_dir: {folder} holds the images of dataset {ds.name} "
                         f"themselves ({len(same)} file(s) with an image's name and bytes: "
                         f"{shown}), not saliency maps. Make the maps with: "
                         f"{saliency_command(_image_dir(ds), folder)}")


def load_saliency(config: Aim3Config, key: str, ds) -> list[np.ndarray]:
    """The saliency map of every image of a dataset, checked (raises naming ids and command).

    Raises:
      FileNotFoundError, ValueError: missing, unreadable or mis-sized maps; maps made from other
        images; a folder that is the image folder or holds the images themselves.
    """
    folder = saliency_folder(config, key)
    _refuse_images_as_maps(folder, ds)
    maps = match_saliency(folder, ds.image_ids, _sizes(ds), data_dir=_image_dir(ds))
    _check_manifest(folder, ds)
    return maps


def check_saliency(config: Aim3Config, datasets: Sequence[tuple[str, object]]) -> None:
    """Every dataset's saliency maps, checked before any write.

    Raises:
      FileNotFoundError, ValueError: missing or mis-sized saliency maps (all named, with the
        command that makes them), or maps made from other images of the same name.
    """
    for key, ds in datasets:
        load_saliency(config, key, ds)


def check_aim2(study: Study) -> None:
    """Aim 2 heatmaps to be reused, checked before any write.

    Raises:
      ValueError: heatmaps computed from other inputs (named), or unreadable files.
    """
    if study.config.aim2_dir is not None:
        for item in study.items():
            aim2_heatmaps(item)


def _differences(recorded: Mapping, current: Mapping) -> list[str]:
    return [f"{HEATMAP_INPUTS.get(k, k)} ({_short(recorded.get(k))} there, {_short(v)} now)"
            for k, v in current.items() if recorded.get(k) != v]


def _short(value) -> str:
    return f"{value[:12]}…" if isinstance(value, str) and len(value) > 16 else repr(value)


def aim2_heatmaps(item: StudyItem) -> "heatmaps_lib.Heatmaps | None":
    """The item's heatmaps from ``config.aim2_dir``, reused only if made from the same inputs.

    The Aim 2 record (``<aim2_dir>/<model>/<dataset>/aim2.json``) names every input of its
    heatmaps (`ais_jax.study.aim2.heatmap_inputs`: image bytes, human matrix, kind and
    symmetrize, checkpoint tensors, input size, preprocessing, cache and format versions); each
    must equal this run's. A dataset that folder does not hold is computed (and said so in the
    summary); anything else that does not match is refused, naming what differs.

    Raises:
      ValueError: heatmaps made from other inputs, from an Aim 2 that did not record them, or
        files that cannot be read (each named).
    """
    if item.config.aim2_dir is None:
        return None
    root = Path(item.config.aim2_dir).expanduser()
    folder = root / item.model.label / item.key
    record_path = folder / "aim2.json"
    if not (folder / heatmaps_lib.GRID_FILE).is_file() and not record_path.is_file():
        log.warning("%s: no Aim 2 heatmaps of %s there; computing them", root, item.tag)
        return None
    drop = ("Rerun Aim 2 on these inputs (python -m experiments.aim2 "
            f"--out={item.config.aim2_dir} ...), or drop --aim2_dir to compute the heatmaps")
    if not record_path.is_file():
        raise ValueError(f"{folder}: Aim 2 heatmaps without their record (aim2.json; an "
                         f"unfinished run?), so their inputs cannot be checked. {drop}")
    record = preflight.read_json(record_path, "an Aim 2 record (aim2.json)")
    recorded = record.get("heatmap_inputs") if isinstance(record, dict) else None
    if not isinstance(recorded, dict):
        raise ValueError(f"{record_path}: made by an older Aim 2 that did not record the inputs "
                         f"of its heatmaps, so they cannot be checked. {drop}")
    differs = _differences(recorded, heatmap_inputs(item))
    if differs:
        raise ValueError(f"{folder}: the Aim 2 heatmaps there were made from other inputs than "
                         f"this run's for {item.tag}: " + "; ".join(differs) + f". {drop}")
    try:
        heat = heatmaps_lib.read_heatmaps(folder)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{folder / heatmaps_lib.IDS_FILE}: not an Aim 2 heatmap manifest "
                         f"({type(e).__name__}: {e})") from e
    if tuple(heat.image_ids) != tuple(item.image_ids):
        raise ValueError(f"{folder}: Aim 2 heatmaps of other images ({len(heat.image_ids)} ids, "
                         f"first {list(heat.image_ids[:3])}) than dataset {item.key} "
                         f"({len(item.image_ids)}, first {list(item.image_ids[:3])}); {drop}")
    return heat


def heatmaps_for(item: StudyItem) -> tuple["heatmaps_lib.Heatmaps", str]:
    """The item's heatmaps and where they came from (``'aim2'`` or ``'computed'``)."""
    heat = aim2_heatmaps(item)
    if heat is not None:
        return heat, "aim2"
    return heatmaps_lib.heatmaps_for_item(item), "computed"


def compare_sources(heat: Sequence[np.ndarray], sal: Sequence[np.ndarray], *,
                    percents: Sequence[float], centre_sd: float, seed: int,
                    tag: str | None = None
                    ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Every comparison for the AIS heatmaps and both baselines of one dataset.

    Args:
      heat: ``n`` heatmaps ``[H_i, W_i]`` at the image size.
      sal: ``n`` saliency maps, same shapes.
      percents: the p of the top-p% regions.
      centre_sd: centre-bias SD relative to the shorter side.
      seed: mismatched-pairs seed.
      tag: progress-bar prefix (None: no bars).

    Returns:
      (``{source: compare_maps(...)}`` for `SOURCES`, ``partner [n]``: the image whose saliency
      map the mismatched baseline paired with each heatmap).
    """
    partner = baselines.mismatched_pairs(len(heat), seed)
    centre = [baselines.centre_bias(np.shape(h), centre_sd) for h in heat]
    def bar(source: str) -> str | None:
        return None if tag is None else f"{tag} {source}"

    return {
        "ais": compare.compare_maps(heat, sal, percents, progress=bar("ais")),
        "centre_bias": compare.compare_maps(centre, sal, percents, progress=bar("centre_bias")),
        "mismatched": compare.compare_maps(heat, baselines.mismatched_saliency(sal, partner),
                                           percents, progress=bar("mismatched")),
    }, partner


def _value_keys(percents: Sequence[float]) -> list[str]:
    return aim3_tables.metric_keys(percents)


def _encode(result: Mapping[str, np.ndarray], percents: Sequence[float]) -> dict:
    """A compare_maps result as JSON: floats with null for NaN/inf (inf kept by the RR case)."""
    out = {k: [json_float(v) for v in np.asarray(result[k], np.float64)]
           for k in _value_keys(percents)}
    for p in percents:
        out[f"case_{p:g}"] = [str(c) for c in result[f"case_{p:g}"]]
        for k in ("tp", "fn", "fp", "tn"):
            out[f"{k}_{p:g}"] = [int(v) for v in result[f"{k}_{p:g}"]]
    return out


def _decode(record: Mapping, percents: Sequence[float]) -> dict[str, np.ndarray]:
    out = {k: np.array([np.nan if v is None else v for v in record[k]], np.float64)
           for k in _value_keys(percents)}
    for p in percents:
        case = np.array(record[f"case_{p:g}"], dtype=str)
        out[f"case_{p:g}"] = case
        out[f"rr_{p:g}"] = np.where(case == "inf", np.inf, out[f"rr_{p:g}"])
        for k in ("tp", "fn", "fp", "tn"):
            out[f"{k}_{p:g}"] = np.array(record[f"{k}_{p:g}"], np.int64)
    return out


def per_image_rows(image_ids: Sequence[str], sizes: Sequence[tuple[int, int]],
                   results: Mapping[str, Mapping[str, np.ndarray]], partner: np.ndarray,
                   percents: Sequence[float]) -> list[dict]:
    """One row per image and map source (``partner_id`` for the mismatched baseline)."""
    rows = []
    keys = _value_keys(percents) + [f"case_{p:g}" for p in percents]
    for source, result in results.items():
        for i, image_id in enumerate(image_ids):
            row = {"image_id": image_id, "height": sizes[i][0], "width": sizes[i][1],
                   "source": source,
                   "partner_id": image_ids[int(partner[i])] if source == "mismatched" else ""}
            row.update({k: result[k][i] for k in keys})
            rows.append(row)
    return rows


def per_image_columns(percents: Sequence[float]) -> list[str]:
    return (["image_id", "height", "width", "source", "partner_id"]
            + [f"rr_{p:g}" for p in percents] + [f"case_{p:g}" for p in percents]
            + ["cc", "sim", "kld"] + [f"auc_{p:g}" for p in percents])


def run_dataset(item: StudyItem) -> dict:
    """Aim 3 for one model on one dataset; writes its folder and returns its row."""
    config: Aim3Config = item.config  # type: ignore[assignment]
    percents = tuple(config.percents)
    out, ds = item.out, item.dataset
    heat, heat_source = heatmaps_for(item)
    sal = load_saliency(config, item.key, ds)
    heat_maps = heatmaps_lib.upsample_each(heat.grid, heat.sizes)  # [H_i, W_i] each
    key = resume.run_key(
        heatmaps=resume.digest(heat.grid), saliency=[resume.digest(s) for s in sal],
        sizes=[list(s) for s in heat.sizes], percents=list(percents),
        centre_sd=config.centre_sd, seed=config.mismatch_seed, version=RECORD_VERSION)
    record = resume.read_record(out / RECORD_FILE, key)
    resumed = record is not None
    if record is None:
        # The earlier run's per-image figures go first: none may sit beside the new tables.
        resume.remove_tree(out / "figure4")
        results, partner = compare_sources(heat_maps, sal, percents=percents,
                                           centre_sd=config.centre_sd,
                                           seed=config.mismatch_seed, tag=item.tag)
        storage.write_text(out / "per_image.csv", csv_text(
            per_image_rows(item.image_ids, heat.sizes, results, partner, percents),
            per_image_columns(percents)))
        record = resume.write_record(out / RECORD_FILE, {
            "model": item.model.label, "dataset": item.key, "display_name": ds.name,
            "image_ids": list(item.image_ids), "sizes": [list(s) for s in heat.sizes],
            "heatmaps": heat_source, "undefined_heatmaps": list(heat.undefined_ids),
            "saliency_dir": str(saliency_folder(config, item.key)),
            "partner_ids": [item.image_ids[int(j)] for j in partner],
            "percents": list(percents), "centre_sd": config.centre_sd,
            "mismatch_seed": config.mismatch_seed,
            "rr_cases": {s: {f"{p:g}": compare_counts(results[s], p) for p in percents}
                         for s in results},
            "kld_shifted": {s: [i for i, b in zip(item.image_ids, results[s]["kld_shifted"],
                                                  strict=True) if b] for s in results},
            "sources": {s: _encode(results[s], percents) for s in results},
        }, key)
    results = {s: _decode(record["sources"][s], percents) for s in record["sources"]}

    examples = _examples(item, heat_maps, sal, results["ais"], percents, config.examples)
    figures.save_figure(aim3_figures.contour_grid(
        examples, percents=percents, suptitle=f"{item.model.label} / {ds.name}: saliency "
        "(orange) vs AIS (blue)"), out / "figure4.png")
    if config.per_image_figures:
        _per_image_figures(item, heat_maps, sal, results["ais"], percents)
    else:
        resume.remove_tree(out / "figure4")
    return {"model": item.model.label, "dataset": item.key, "display_name": ds.name,
            "n_images": ds.n, "results": results, "examples": examples, "resumed": resumed,
            "heatmaps": heat_source, "undefined_heatmaps": list(heat.undefined_ids),
            "kld_shifted": record["kld_shifted"], "cache": item.cache_report()}


def compare_counts(result: Mapping[str, np.ndarray], p: float) -> dict[str, int]:
    """How many images fall in each relative-risk case at one p."""
    case = np.asarray(result[f"case_{p:g}"])
    return {c: int(np.sum(case == c)) for c in compare.RR_CASES}


def _rr_of(result: Mapping[str, np.ndarray], i: int, percents: Sequence[float]) -> dict:
    return {p: float(result[f"rr_{p:g}"][i]) for p in percents}


def _examples(item: StudyItem, heat: Sequence[np.ndarray], sal: Sequence[np.ndarray],
              ais: Mapping[str, np.ndarray], percents: Sequence[float], k: int) -> list[dict]:
    """k images spread over the range of the middle p's RR, with everything to draw them."""
    middle = percents[len(percents) // 2]
    picks = aim3_figures.pick_examples(item.image_ids, ais[f"rr_{middle:g}"], k)
    return [{"dataset": item.dataset.name, "image_id": item.image_ids[i],
             "image": np.asarray(open_rgb(item.dataset.image_paths[i])),
             "saliency": sal[i], "heatmap": heat[i], "rr": _rr_of(ais, i, percents)}
            for i in picks]


def _per_image_figures(item: StudyItem, heat: Sequence[np.ndarray], sal: Sequence[np.ndarray],
                       ais: Mapping[str, np.ndarray], percents: Sequence[float]) -> None:
    # The folder holds only this record's figures (an earlier run's were removed before its
    # record was replaced): those present are current; any of an image no longer here goes.
    folder = item.out / "figure4"
    resume.prune(folder, {f"{p.stem}.png" for p in item.dataset.image_paths})
    todo = [i for i, p in enumerate(item.dataset.image_paths)
            if not (folder / f"{p.stem}.png").is_file()]
    for i in tqdm(todo, desc=f"{item.tag} figures", unit="img", disable=not todo):
        path = item.dataset.image_paths[i]
        fig = aim3_figures.contour_figure(
            np.asarray(open_rgb(path)), sal[i], heat[i], percents=percents,
            rr=_rr_of(ais, i, percents), title=f"{item.model.label} / {item.dataset.name} / "
            f"{item.image_ids[i]}")
        figures.save_figure(fig, folder / f"{path.stem}.png")


TABLE1_COLUMNS = ("model", "dataset", "p", "n", "n_finite", "n_inf", "n_nan",
                  "n_nan_empty_saliency", "n_nan_empty_heatmap", "mean", "sd", "median",
                  "paper_mean", "paper_sd")
METRIC_COLUMNS = ("model", "dataset", "source", "metric", "n", "n_finite", "n_inf", "n_nan",
                  "mean", "sd", "median")
TEST_COLUMNS = ("model", "dataset", "baseline", "metric", "n", "n_test", "n_inf", "n_nan",
                "ais_better", "wins", "losses", "ties", "mean_diff", "median_diff",
                "statistic", "p", "test")


def _json_rows(rows: Sequence[dict]) -> list[dict]:
    return [{k: (json_float(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in rows]


def summary_markdown(config: Aim3Config, rows: Sequence[dict], table1: Sequence[dict],
                     metric: Sequence[dict], tests: Sequence[dict]) -> str:
    """summary.md: inputs, Table 1 beside the paper's, baselines, definitions."""
    names = {r["dataset"]: r["display_name"] for r in rows}
    percents = tuple(config.percents)
    lines = [config.preamble.rstrip(), "" if config.preamble else None,
             "# Aim 3 — AIS heatmaps vs saliency maps", ""]
    lines = [x for x in lines if x is not None]
    for r in rows:
        undefined = r["undefined_heatmaps"]
        lines.append(f"- {r['model']} / {r['display_name']}: {r['n_images']} images; heatmaps "
                     f"{'read from Aim 2' if r['heatmaps'] == 'aim2' else 'computed'}"
                     + (f"; {len(undefined)} undefined (no positive AIS: all-zero map, RR NaN):"
                        f" {', '.join(undefined[:5])}" if undefined else "")
                     + (" (resumed)" if r["resumed"] else ""))
    lines += ["", "## Table 1 — relative risk (ours beside the paper's)", "",
              "RR = P(CR | Sal) / P(CR | not Sal); chance = 1. Mean ± SD over the images with a "
              "finite RR (SD with ddof = 1); the median over all images with a defined RR "
              "(inf counts as the largest); inf = the heatmap region lies inside the saliency "
              "region (fp = 0); NaN = an empty region (a constant map, or an undefined "
              "heatmap). Regions: pixels > numpy.percentile(map, 100 − p) (linear), ties "
              "excluded, at the original image size.", "",
              aim3_tables.table1_markdown(table1, names), "",
              "## Against null baselines", "",
              "Map sources: " + "; ".join(f"`{s}` = {SOURCE_HELP[s]}" for s in SOURCES)
              + f". Centre bias: isotropic Gaussian, SD = {config.centre_sd:g} × the shorter "
              f"side. Mismatched: seed {config.mismatch_seed}, the partner's map resized "
              "(bilinear, stretched) to the image's (H, W). Metrics: CC (Pearson), SIM (MIT, "
              "with min–max), KLD (saliency as reference; lower = closer; "
              + _kld_shift_note(rows) + "), AUC of the heatmap "
              f"for the top-p% saliency region. Tests: {tests[0]['test'] if tests else '–'}; "
              "'AIS better' counts images where AIS agrees more with saliency than the "
              "baseline does (higher, or lower KLD), over images without NaN.", ""]
    lines.append(aim3_tables.baselines_markdown(metric, tests, names))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    if len(datasets) > 1:
        lines += ["### Per dataset", ""]
        for d in datasets:
            lines.append(aim3_tables.baselines_markdown(metric, tests, names, dataset=d))
    lines += ["Figure 4 analogue: `figure4_<model>.png` (contours of the top "
              + "/".join(f"{p:g}" for p in percents)
              + "% regions; saliency orange, AIS blue; RR above each image)."]
    return "\n".join(lines).rstrip() + "\n"


def _kld_shift_note(rows: Sequence[dict]) -> str:
    """How KLD treats negative values, and how many images it concerned in this run."""
    counts = [(r["model"], r["display_name"], s, len(ids)) for r in rows
              for s, ids in r["kld_shifted"].items() if ids]
    told = "; ".join(f"{m} / {d} / {s}: {k}" for m, d, s, k in counts) or "none in this run"
    return ("a map with negative values is shifted to a minimum of 0 first, map − min(map); "
            f"images where the heatmap or the saliency map was shifted: {told}")


def write_tables(study: Study, rows: list[dict]) -> dict:
    """Aim 3's across-datasets step: Table 1, metrics, baseline tests, Figure 4, summary.md."""
    config: Aim3Config = study.config  # type: ignore[assignment]
    percents, out = tuple(config.percents), study.out
    ais = {(r["model"], r["dataset"]): r["results"]["ais"] for r in rows}
    per_source = {(r["model"], r["dataset"]): r["results"] for r in rows}
    table1 = aim3_tables.table1_rows(ais, percents)
    metric = aim3_tables.metric_rows(per_source, percents)
    tests = aim3_tables.baseline_test_rows(per_source, percents)
    for name, data, columns in (("table1", table1, TABLE1_COLUMNS),
                                ("metrics", metric, METRIC_COLUMNS),
                                ("baseline_tests", tests, TEST_COLUMNS)):
        storage.write_json(out / f"{name}.json", _json_rows(data))
        storage.write_text(out / f"{name}.csv", csv_text(data, columns))
    files = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        examples = [e for r in rows if r["model"] == model for e in r["examples"]]
        path = out / f"figure4_{model}.png"
        figures.save_figure(aim3_figures.contour_grid(
            examples, percents=percents,
            suptitle=f"{model}: top-p% saliency (orange) vs AIS (blue)"), path)
        files[f"figure4_{model}"] = path
    resume.prune(out, {p.name for k, p in files.items()}, patterns=("figure4_*.png",))
    text = summary_markdown(config, rows, table1, metric, tests)
    storage.write_text(out / "summary.md", text)
    files.update({n: out / n for n in ("summary.md", "table1.csv", "table1.json", "metrics.csv",
                                       "baseline_tests.csv", "run.json")})
    return {"out": out, "rows": rows, "table1": table1, "metrics": metric, "tests": tests,
            "files": files, "text": text}


def aim3() -> Aim:
    """Aim 3 as a `ais_jax.study.runner.Aim`."""
    return Aim("aim3", run_dataset, write_tables,
               versions={"aim3_record_version": RECORD_VERSION})


def run_aim3(config: Aim3Config) -> dict:
    """Runs Aim 3 for every model and dataset of ``config``; see the module docstring.

    Returns:
      ``{'out', 'rows', 'table1', 'metrics', 'tests', 'files', 'text'}``.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input (missing or mis-sized
        saliency maps included), before anything is written.
    """
    config.validate()
    preflight.check_aim_folder(config.out, aim3().name)
    datasets = tuple(load_datasets(config))
    check_saliency(config, datasets)  # before the (large) weights are read
    study = Study(config, tuple(load_models(config)), datasets)
    check_aim2(study)
    return run_study(config, aim3(), study=study)
