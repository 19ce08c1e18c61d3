r"""A full-scale rehearsal of Aim 1: the real code path, on generated data of the paper's shape.

    python -m experiments.aim1_full --out=/tmp/rehearsal     # 6 x 120 images, 2 models, 5 x 8

Generates, once, under ``--out``:

* ``data/``: the Peterson layout `ais_jax.data.datasets.load_peterson` reads
  (``data/<category>/images/img_000.png ...`` and ``data/<category>/sim_judgements/
  similarity.mat``) for the six real category names, ``--n_images`` procedural images each
  (`ais_jax.study.aim1_demo.draw_image`) and a seeded symmetric random "human" similarity matrix.
  **The matrices are random, so every score of the run is meaningless: only the times count.**
* ``weights/random_{a,b}.safetensors``: two seeded random He-scaled VGG-16 networks of the full
  shapes (trunk + 25088 -> 4096 -> 4096 -> 1000 head; `ais_jax.models.vgg16.random_params`),
  saved with `ais_jax.weights.save_params`, their metadata saying SYNTHETIC.

then runs `ais_jax.study.aim1` through `ais_jax.study.runner.run_study` with the `Aim1Config` that
``python -m experiments.aim1 --data_dir=<out>/data --out=<out>/aim1`` builds from its default
flags (folds 5, the 8 legacy seeds, R^2, greedy selection, batch 8, automatic chunks), for
both networks, with results in ``<out>/aim1``. Each (model, dataset) is timed by stage: trunk
activations, ablation similarities, the folds (greedy curves and statistics); the tables and
figure are timed once. The activation cache is ``<out>/cache`` unless ``$AIS_JAX_CACHE`` is set.

Prints a table of stage -> wall seconds (summed and per item), the machine (JAX backend and
device, CPUs, load average and the float32 HIGHEST matmul rate at start and end) and writes
``<out>/rehearsal.json``. Everything printed is measured in this run, nothing extrapolated.

Interrupted (Ctrl-C, kill), the same command resumes: existing data and weights are kept,
cached trunk activations / ablation similarities are read back and finished folds are reused.
The report marks those stages; the total of such a run is not the full figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np
import safetensors
import scipy.io
from tqdm.auto import tqdm

from ais_jax import preflight, storage
from ais_jax.data.datasets import PETERSON_CATEGORIES
from ais_jax.engine import activations, active_set, crossval, throughput
from ais_jax.engine.ablation import fc6_active_fraction, shift_fc6_biases
from ais_jax.models.vgg16 import random_params
from ais_jax.study import aim1
from ais_jax.study.aim1_demo import draw_image
from ais_jax.study.item import StudyItem
from ais_jax.study.runner import Aim, Study, prepare_study, run_study
from ais_jax.weights import save_params

# Labels of the two networks, in the order --model=both runs the real ones (imagenet, ecoset).
MODEL_LABELS = ("random_a", "random_b")
NUM_CLASSES = 1000
DATA_RECIPE_VERSION = 1  # part of the generated data's identity (data/synthetic.json)
WEIGHTS_RECIPE_VERSION = 1  # part of each network's identity (its source_sha256)
DATA_MANIFEST = "synthetic.json"
REPORT = "rehearsal.json"
ITEM_STAGES = ("trunk", "similarities", "folds")  # per (model, dataset)
STAGES = ("data", "weights", "prepare", *ITEM_STAGES, "tables")


# ---------------------------------------------------------------------------------------------
# Generated inputs.


def data_identity(categories: Sequence[str], n_images: int, image_size: int, seed: int) -> dict:
    """What the generated data under ``<out>/data`` is: its recipe, sizes and seed."""
    return {"synthetic": True, "recipe_version": DATA_RECIPE_VERSION,
            "categories": list(categories), "n_images": n_images, "image_size": image_size,
            "seed": seed}


def _image_rng(seed: int, category: int, image: int) -> np.random.Generator:
    # One stream per image, so an interrupted generation redraws exactly the missing files.
    return np.random.default_rng((seed, 1, category, image))


def random_similarity(n: int, rng: np.random.Generator) -> np.ndarray:
    """A symmetric random similarity matrix ``[n, n]`` with entries in [0, 1] and unit diagonal.

    Random: it stands for the human matrix only so that the real code path can run.
    """
    a = rng.uniform(0.0, 1.0, (n, n))
    sim = (a + a.T) / 2  # exactly symmetric: float addition commutes
    np.fill_diagonal(sim, 1.0)
    return sim


def _check_data(root: Path, identity: dict) -> None:
    manifest = root / DATA_MANIFEST
    if not manifest.exists():
        return
    try:
        found = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{manifest}: unreadable ({e}); delete {root} or use another --out") from e
    found = {k: found.get(k) for k in identity}
    if found != identity:
        diff = ", ".join(f"{k}={found[k]!r} (now {identity[k]!r})" for k in identity
                         if found[k] != identity[k])
        raise ValueError(f"{manifest}: {root} holds generated data of another rehearsal "
                         f"({diff}); use another --out or the same settings")


def generate_data(root: Path, identity: dict) -> dict:
    """Writes the Peterson layout under ``root``, skipping every file that already exists.

    Each file is written atomically and drawn from its own seeded stream, so a generation cut
    off at any point is completed by the next call with exactly the same files.

    Args:
      root: the data folder (``<out>/data``).
      identity: `data_identity` of the data wanted.

    Returns:
      ``{'images_written', 'matrices_written', 'skipped'}``: ``skipped`` when nothing was
      missing.

    Raises:
      ValueError: ``root`` holds data of other settings (its manifest differs).
    """
    _check_data(root, identity)
    n, size, seed = identity["n_images"], identity["image_size"], identity["seed"]
    # The manifest first: a later run with other settings is refused even if this one is cut.
    if not (root / DATA_MANIFEST).exists():  # else _check_data found it the same
        storage.write_json(root / DATA_MANIFEST, {
            **identity, "note": "SYNTHETIC rehearsal data (experiments.aim1_full): procedural "
            "images and a seeded random similarity matrix per category; scores on it are "
            "meaningless, only the run's times are."})
    images = matrices = 0
    width = max(3, len(str(n - 1)))  # sorted file names = matrix order
    for c, category in enumerate(identity["categories"]):
        folder = root / category
        for i in range(n):
            path = folder / "images" / f"img_{i:0{width}d}.png"
            if path.exists():
                continue
            with storage.atomic_path(path) as tmp:
                draw_image(_image_rng(seed, c, i), size).save(tmp, format="PNG")
            images += 1
        mat = folder / "sim_judgements" / "similarity.mat"
        if not mat.exists():
            buf = io.BytesIO()
            scipy.io.savemat(buf, {"similarity": random_similarity(
                n, np.random.default_rng((seed, 2, c)))})
            with storage.atomic_path(mat) as tmp:
                tmp.write_bytes(buf.getvalue())
            matrices += 1
    return {"images_written": images, "matrices_written": matrices,
            "skipped": images == 0 and matrices == 0}


def network_identity(seed: int, index: int, fc6_active: float | None = None) -> str:
    """A random network's stand-in for a checkpoint sha256: recipe, seed, index, fc6 level."""
    level = "" if fc6_active is None else f" fc6_active {fc6_active!r}"
    return hashlib.sha256(f"ais_jax rehearsal random VGG-16 recipe {WEIGHTS_RECIPE_VERSION} "
                          f"seed {seed} network {index}{level}".encode()).hexdigest()


def _existing_identity(path: Path) -> str | None:
    """The ``source_sha256`` in a weights file's metadata (None if the file is absent)."""
    if not path.exists():
        return None
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            return (f.metadata() or {}).get("source_sha256", "")
    except (safetensors.SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable weights file ({e}); delete it or use another "
                         "--out") from e


def _check_weights(paths: Sequence[Path], seed: int, fc6_active: float | None) -> None:
    for index, path in enumerate(paths):
        found = _existing_identity(path)
        if found is not None and found != network_identity(seed, index, fc6_active):
            raise ValueError(f"{path}: holds another network than random network {index} of "
                             f"--seed={seed}; use another --out or the same settings")


def generate_weights(path: Path, seed: int, index: int, fc6_active: float | None = None,
                     calibration: Sequence[Path] = (), image_size: int = 224) -> bool:
    """Saves random network ``index`` of ``seed`` at ``path`` unless it is there; True if written.

    The full VGG-16 shapes (about 528 MiB of float32), He-scaled (`random_params`); the
    metadata says SYNTHETIC. With ``fc6_active``, one constant is subtracted from every fc6
    bias so that that fraction of fc6 units is active (``fc6_pre > 0``) on the
    ``calibration`` images: a He-scaled head with zero biases has half of fc6 active, a
    trained network far fewer, and the active-set fc7 (`ais_jax.engine.active_set`) depends on it.
    """
    identity = network_identity(seed, index, fc6_active)
    if _existing_identity(path) == identity:
        return False
    params = random_params(jax.random.fold_in(jax.random.key(seed), index), NUM_CLASSES)
    level = "zero fc6 biases"
    if fc6_active is not None:
        acts = activations.trunk_activations(params["trunk"], list(calibration),
                                             image_size=image_size, desc="fc6 calibration")
        blocks = activations.blocks_from_acts(acts)
        head, shift = shift_fc6_biases(params["head"], blocks, fc6_active)
        params = {**params, "head": head}
        level = (f"fc6 biases shifted by {-shift:.4g} so that {fc6_active:.0%} of fc6 units are "
                 f"active on {len(calibration)} calibration images")
    save_params(path, params, {
        "model": "rehearsal_random_vgg16", "source_file": "generated by experiments.aim1_full",
        "source_sha256": identity, "num_classes": str(NUM_CLASSES),
        "description": f"SYNTHETIC random weights: He-scaled VGG-16 (random_params), seed "
                       f"{seed}, network {index}, {level}; for timing the Aim 1 code path "
                       "only"})
    return True


# ---------------------------------------------------------------------------------------------
# Timing.


@contextlib.contextmanager
def _cache_under(folder: Path) -> Iterator[str]:
    """Points ``$AIS_JAX_CACHE`` at ``folder`` for the block unless the user set it."""
    before = os.environ.get(storage.CACHE_ENV)
    if before:
        yield before
        return
    os.environ[storage.CACHE_ENV] = str(folder)
    try:
        yield str(folder)
    finally:
        if before is None:
            os.environ.pop(storage.CACHE_ENV, None)
        else:
            os.environ[storage.CACHE_ENV] = before


def _probe(matmul_rate: Callable[[int], float], size: int) -> dict:
    start = time.perf_counter()
    rate = matmul_rate(size)
    return {"load_average": list(os.getloadavg()), "matmul_gflops": rate / 1e9,
            "matmul_size": size, "probe_seconds": time.perf_counter() - start}


def timed_aim1(records: list[dict], *, on_fold: Callable[[dict], None] | None = None,
               bar: tqdm | None = None) -> Aim:
    """`ais_jax.study.aim1.aim1` with each stage of each (model, dataset) timed into ``records``.

    The per-dataset step first touches ``item.activations`` (the trunk) and
    ``item.similarities`` (the 512 ablations), each timed with its cache state, then calls
    Aim 1's own step, which then finds both computed: that time is the folds' (greedy curves,
    statistics, files); ``fold_seconds`` lists, per fold, the time since the previous one
    ended (the first one's includes Aim 1's global AIS on all images and its compilation).
    The across-datasets step (tables, Figure 1, summary) is timed as ``records[-1]`` with
    ``item = None``.

    Args:
      records: list the timings are appended to, one dict per item, then one for the tables.
      on_fold: passed to Aim 1 (called after each fold is written or read back).
      bar: an overall progress bar, advanced by one per (model, dataset).
    """
    real = aim1.aim1(on_fold=lambda record: _fold_done(record, on_fold))
    current: dict = {}

    def _fold_done(record: dict, hook: Callable[[dict], None] | None) -> None:
        now = time.perf_counter()
        current["fold_seconds"].append(now - current["last"])
        current["last"] = now
        if hook is not None:
            hook(record)

    def per_dataset(item: StudyItem) -> dict:
        if bar is not None:
            bar.set_postfix_str(item.tag)
        stages = {}
        t0 = time.perf_counter()
        hit = item.activations.hit
        stages["trunk"] = {"seconds": time.perf_counter() - t0, "cache_hit": hit}
        t0 = time.perf_counter()
        hit = item.similarities.hit
        stages["similarities"] = {"seconds": time.perf_counter() - t0, "cache_hit": hit}
        t0 = time.perf_counter()
        current.update(fold_seconds=[], last=t0)
        row = real.per_dataset(item)
        stages["folds"] = {"seconds": time.perf_counter() - t0, "folds": row["n_folds"],
                           "folds_resumed": row["folds_resumed"],
                           "fold_seconds": current["fold_seconds"]}
        head = item.model.params["head"]
        fraction = fc6_active_fraction(head, item.blocks)
        records.append({"item": item.tag, "model": item.model.label, "dataset": item.key,
                        "n_images": item.human.shape[0], "stages": stages,
                        "fc6_active_fraction": fraction,
                        "fc7_path": "active" if active_set.resolve_path("auto", fraction)
                        else "plain"})
        if bar is not None:
            bar.update(1)
        return row

    def across_datasets(study: Study, rows: list[dict]) -> Any:
        t0 = time.perf_counter()
        result = real.across_datasets(study, rows)
        records.append({"item": None, "stages": {"tables": {
            "seconds": time.perf_counter() - t0}}})
        return result

    return Aim(real.name, per_dataset, across_datasets, real.versions)


# ---------------------------------------------------------------------------------------------
# The rehearsal.


def _check_args(categories: Sequence[str], models: int, n_images: int, image_size: int,
                matmul_size: int) -> None:
    unknown = [c for c in categories if c not in PETERSON_CATEGORIES]
    if unknown or not categories:
        raise preflight.UsageError(f"--datasets: {', '.join(unknown) or 'empty'}: give some of "
                                   f"{', '.join(PETERSON_CATEGORIES)}")
    if len(set(categories)) != len(categories):
        raise preflight.UsageError(f"--datasets has repeated names: {list(categories)}")
    if not 1 <= models <= len(MODEL_LABELS):
        raise preflight.UsageError(f"--models must be 1 or {len(MODEL_LABELS)}, got {models}")
    preflight.check_positive(n_images, "--n_images")
    preflight.check_positive(matmul_size, "--matmul_size")
    if image_size < 32:  # Aim1Config says the same, but only after the images were drawn
        raise preflight.UsageError(f"--image_size must be at least 32, got {image_size}")


def rehearsal_config(out: Path, *, categories: Sequence[str], folds: int,
                     seeds: Sequence[int], image_size: int, batch_size: int,
                     models: int) -> aim1.Aim1Config:
    """The `Aim1Config` of ``experiments.aim1 --data_dir=<out>/data --out=<out>/aim1``.

    The fields the command line does not set keep `Aim1Config`'s defaults, which are the
    command's flag defaults (score r2, methods greedy, chunk_maps automatic, no symmetrize);
    the preamble of summary.md says the run is synthetic.
    """
    labels = MODEL_LABELS[:models]
    return aim1.Aim1Config(
        out=str(out / "aim1"), data_dir=str(out / "data"),
        models=tuple((label, str(out / "weights" / f"{label}.safetensors")) for label in labels),
        datasets=tuple(categories), batch_size=batch_size, image_size=image_size,
        folds=folds, seeds=tuple(seeds),
        preamble="> **SYNTHETIC REHEARSAL** (experiments.aim1_full): procedural images, random "
                 "similarity matrices and random VGG-16 weights. The scores below are "
                 "meaningless; the run exists to measure wall time (rehearsal.json).")


def run_rehearsal(out: str | os.PathLike, *, n_images: int = 120,
                  categories: Sequence[str] = PETERSON_CATEGORIES, folds: int = 5,
                  seeds: Sequence[int] = crossval.LEGACY_SEEDS, image_size: int = 224,
                  batch_size: int = 8, models: int = 2, seed: int = 0,
                  matmul_size: int = 4096, progress: bool = True,
                  fc6_active: float | None = None,
                  matmul_rate: Callable[[int], float] | None = None,
                  on_fold: Callable[[dict], None] | None = None) -> dict:
    """Generates the inputs (once), runs Aim 1 on them, times every stage; see the module doc.

    Args:
      out: the rehearsal folder (data/, weights/, cache/, aim1/, rehearsal.json).
      n_images: images per dataset (the paper: 120).
      categories: Peterson category names (the paper: all six).
      folds, seeds: Aim 1's cross-validation (the paper: 5 folds x the 8 legacy seeds).
      image_size: side of the generated square images and the network input.
      batch_size: images per trunk call.
      models: random networks, 1 or 2 (the paper: two models).
      seed: seed of the images, matrices and networks.
      matmul_size: side of the square float32 matmul timed at start and end.
      fc6_active: fraction of fc6 units the networks should have active (`generate_weights`;
        calibrated on the first dataset's first 16 images); None = zero biases (~50 %).
      progress: show the overall bar over the (model, dataset) items.
      matmul_rate: ``size -> FLOP/s``; default `ais_jax.engine.throughput.matmul_rate`.
      on_fold: passed to Aim 1 (called after each fold is written or read back).

    Returns:
      The report written to ``<out>/rehearsal.json``, plus ``text`` (the printed table) and
      ``result`` (`ais_jax.study.aim1.run_aim1`'s return value).

    Raises:
      ais_jax.preflight.UsageError, ValueError: a bad setting, or ``out`` holding inputs of
        other settings, before anything is written.
      ais_jax.storage.WriteError: ``out`` is a file or not writable.
    """
    wall0 = time.perf_counter()
    categories = tuple(categories)
    _check_args(categories, models, n_images, image_size, matmul_size)
    out = preflight.check_out_dir(out)
    config = rehearsal_config(out, categories=categories, folds=folds, seeds=seeds,
                              image_size=image_size, batch_size=batch_size, models=models)
    config.validate()
    fewest, reason = config.min_images()
    if n_images < fewest:
        raise preflight.UsageError(f"--n_images={n_images}: too few for {reason}")
    identity = data_identity(categories, n_images, image_size, seed)
    weight_paths = [Path(source) for _, source in config.models]
    _check_data(out / "data", identity)
    if fc6_active is not None and not 0.0 < fc6_active <= 1.0:
        raise preflight.UsageError(f"--fc6_active must be in (0, 1], got {fc6_active}")
    _check_weights(weight_paths, seed, fc6_active)
    if matmul_rate is None:
        matmul_rate = throughput.matmul_rate

    with _cache_under(out / "cache") as cache:
        start = _probe(matmul_rate, matmul_size)
        t_start = time.perf_counter()
        stages: dict[str, dict] = {}
        t0 = time.perf_counter()
        made = generate_data(out / "data", identity)
        stages["data"] = {"seconds": time.perf_counter() - t0, **made}
        t0 = time.perf_counter()
        calibration = sorted((out / "data" / categories[0] / "images").glob("*.png"))[:16]
        written = [generate_weights(p, seed, i, fc6_active, calibration, image_size)
                   for i, p in enumerate(weight_paths)]
        stages["weights"] = {"seconds": time.perf_counter() - t0, "written": sum(written),
                             "skipped": not any(written)}
        t0 = time.perf_counter()
        study = prepare_study(config)
        stages["prepare"] = {"seconds": time.perf_counter() - t0}
        records: list[dict] = []
        n_items = len(study.models) * len(study.datasets)
        with tqdm(total=n_items, desc="rehearsal (model, dataset)", unit="item",
                  disable=not progress) as bar:
            result = run_study(config, timed_aim1(records, on_fold=on_fold, bar=bar),
                               study=study)
        stages["tables"] = records.pop()["stages"]["tables"]
        total = time.perf_counter() - t_start
        end = _probe(matmul_rate, matmul_size)
    report = _report(config, identity, stages, records, total, start, end, cache,
                     time.perf_counter() - wall0, fc6_active)
    storage.write_json(out / REPORT, report)
    return {**report, "text": format_report(report), "result": result}


def _machine(start: dict, end: dict) -> dict:
    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device_kind": device.device_kind,
            "devices": jax.device_count(), "cpu_count": os.cpu_count(),
            "load_average_start": start["load_average"], "load_average_end": end["load_average"],
            "matmul_gflops_start": start["matmul_gflops"],
            "matmul_gflops_end": end["matmul_gflops"], "matmul_size": start["matmul_size"],
            "matmul_probe_seconds": [start["probe_seconds"], end["probe_seconds"]]}


def _report(config: aim1.Aim1Config, identity: dict, stages: dict, items: list[dict],
            total: float, start: dict, end: dict, cache: str, wall: float,
            fc6_active: float | None = None) -> dict:
    summed = {}
    for name in ITEM_STAGES:
        per = [it["stages"][name] for it in items]
        summed[name] = {"seconds": sum(s["seconds"] for s in per), "items": len(per)}
        if name != "folds":
            summed[name]["cache_hits"] = sum(s["cache_hit"] for s in per)
        else:
            summed[name]["folds"] = sum(s["folds"] for s in per)
            summed[name]["folds_resumed"] = sum(s["folds_resumed"] for s in per)
    all_stages = {**{k: stages[k] for k in ("data", "weights", "prepare")}, **summed,
                  "tables": stages["tables"]}
    reused = [name for name, s in all_stages.items()
              if s.get("skipped") or s.get("cache_hits") or s.get("folds_resumed")]
    return {
        "synthetic": True,
        "note": "Random data and weights: the Aim 1 scores are meaningless; the times are "
                "measured in this run, nothing is extrapolated.",
        "complete_run": not reused,
        "reused": reused,
        "stages": all_stages,
        "items": items,
        "total_seconds": total,
        "wall_seconds_with_probes": wall,
        "machine": _machine(start, end),
        "cache": cache,
        "data": identity,
        "fc6_active_requested": fc6_active,
        "config": {**dataclasses.asdict(config), "seeds": list(config.seeds)},
    }


def _note(name: str, s: dict) -> str:
    if name == "data":
        return ("existed (skipped)" if s["skipped"] else
                f"wrote {s['images_written']} images, {s['matrices_written']} matrices")
    if name == "weights":
        return "existed (skipped)" if s["skipped"] else f"wrote {s['written']} networks"
    if name == "prepare":
        return "load and check datasets and weights"
    if name in ("trunk", "similarities"):
        return f"{s['items']} items, {s['cache_hits']} cache hits"
    if name == "folds":
        return f"{s['folds']} folds, {s['folds_resumed']} resumed"
    return "results, AIS correlations, Figure 1, summary.md"


def format_report(report: dict) -> str:
    """The printed table: stages summed, per item, total, machine."""
    m, cfg, data = report["machine"], report["config"], report["data"]
    k = cfg["folds"] * len(cfg["seeds"])
    lines = [
        f"Aim 1 rehearsal (SYNTHETIC: random data and weights; times only): "
        f"{len(data['categories'])} datasets x {data['n_images']} images "
        f"({data['image_size']} px), {len(cfg['models'])} models, {cfg['folds']} folds x "
        f"{len(cfg['seeds'])} seeds = {k} folds per item",
        f"machine: {m['backend']} ({m['device_kind']}, {m['devices']} device(s)), "
        f"{m['cpu_count']} CPUs; load average {m['load_average_start'][0]:.2f} at start, "
        f"{m['load_average_end'][0]:.2f} at end; float32 HIGHEST matmul "
        f"({m['matmul_size']}^2) {m['matmul_gflops_start']:.1f} GFLOP/s at start, "
        f"{m['matmul_gflops_end']:.1f} at end",
        "",
        f"{'stage':<14}{'seconds':>10}  note",
    ]
    for name in STAGES:
        s = report["stages"][name]
        lines.append(f"{name:<14}{s['seconds']:>10.1f}  {_note(name, s)}")
    lines.append(f"{'total':<14}{report['total_seconds']:>10.1f}  (without the two matmul "
                 f"probes; with them {report['wall_seconds_with_probes']:.1f})")
    lines += ["", f"{'item':<28}{'trunk s':>9}{'sims s':>9}{'folds s':>9}{'fc6 on':>8}"
              f"{'fc7':>8}  reused"]
    for it in report["items"]:
        s = it["stages"]
        reused = [n for n in ("trunk", "similarities") if s[n]["cache_hit"]]
        if s["folds"]["folds_resumed"]:
            reused.append(f"{s['folds']['folds_resumed']}/{s['folds']['folds']} folds")
        lines.append(f"{it['item']:<28}{s['trunk']['seconds']:>9.1f}"
                     f"{s['similarities']['seconds']:>9.1f}{s['folds']['seconds']:>9.1f}"
                     f"{it['fc6_active_fraction']:>8.1%}{it['fc7_path']:>8}  "
                     f"{', '.join(reused) or '-'}")
    lines.append("")
    if report["complete_run"]:
        lines.append("Every stage was computed in this run: the total is the full figure.")
    else:
        lines.append(f"RESUMED: {', '.join(report['reused'])} reused earlier work, so this "
                     "total is NOT the full figure (run again with a new --out for it).")
    return "\n".join(lines)


def cli_main(out: str | None, **kwargs: Any) -> int:
    """What ``python -m experiments.aim1_full`` does, for another command to call.

    Checks ``out`` before any work, runs `run_rehearsal(out, **kwargs)`, prints the table and
    where the report went. Bad input or a failed write ends in one line ``error: ...``.

    Returns:
      The exit status (0, 1 bad input / failed write, 2 bad setting, 130 interrupted).
    """
    def work(_argv: list[str]) -> int:
        preflight.check_out_dir(out)
        report = run_rehearsal(out, **kwargs)
        print(report["text"])
        print(f"wrote {Path(out) / REPORT} (Aim 1 results in {report['config']['out']}/)")
        return 0
    return preflight.run_cli(work)([])
