"""A synthetic Aim 3 benchmark: Aim 2's planted regions against synthetic "saliency" maps.

Nothing is downloaded and no saliency model runs. `run_demo`:

1. runs Aim 2's planted-region demo (`ais_jax.study.aim2_demo.run_demo`, into
   ``<out>/aim2``): non-square images with one planted rectangle each, two synthetic
   networks, a "human" similarity that depends on the rectangle only, and Aim 2's heatmaps;
2. makes one synthetic saliency map per image (written as ``<out>/demo_data/saliency/<id>.npy``,
   the format of `python -m experiments.saliency`): an axis-aligned Gaussian blob with SDs of
   half the rectangle's height and width, centred on the planted rectangle in the
   "coinciding" images (a seeded half of them) and, in the "distractor" images, at a
   uniformly random place drawn independently of the rectangle (so it overlaps it only by
   chance), plus a faint seeded noise (1 % of the peak) so that no plateau ties at a threshold;
3. runs `ais_jax.study.aim3.run_aim3` on that dataset with Aim 2's heatmaps (``aim2_dir``),
   exactly the code path of real data;
4. reports RR and the other comparisons separately for the two groups of images, for AIS and
   both null baselines: RR should be high where saliency covers the planted region and near
   chance (1) where it does not.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import PIL.Image

from ais_jax import preflight, storage
from ais_jax.explain.baselines import CENTRE_BIAS_SD, paired_test
from ais_jax.explain.compare import PERCENTS
from ais_jax.report import aim3_tables, html
from ais_jax.study import aim2_demo
from ais_jax.study.aim3 import SOURCES, Aim3Config, run_aim3

GROUPS = ("coinciding", "distractor")
NOISE = 0.01


@dataclasses.dataclass(frozen=True)
class Aim3DemoConfig:
    """The synthetic benchmark's size, seeds and the Aim 3 settings.

    Attributes:
      out: results directory (Aim 2's demo goes to ``<out>/aim2``).
      n_images: images of Aim 2's demo (half coinciding, half distractor).
      seed: seed of the saliency maps (which images coincide, distractor places, noise).
      batch_size: images per trunk call.
      percents, centre_sd, mismatch_seed, examples, per_image_figures, chunk_maps,
        rsatoolbox: as `Aim3Config` (checked before anything is written).
      report: write ``out/report.html`` at the end, and Aim 2's demo its own
        (`ais_jax.report.html`).
    """

    out: str
    n_images: int = 40
    seed: int = 0
    batch_size: int = 8
    percents: tuple[float, ...] = PERCENTS
    centre_sd: float = CENTRE_BIAS_SD
    mismatch_seed: int = 0
    examples: int = 4
    per_image_figures: bool = False
    chunk_maps: int | None = None
    rsatoolbox: bool = False
    report: bool = True

    def aim3_config(self, **data) -> Aim3Config:
        """The Aim 3 config of this demo, on ``data`` (the dataset and models fields)."""
        return Aim3Config(
            out=self.out, batch_size=self.batch_size, chunk_maps=self.chunk_maps,
            rsatoolbox=self.rsatoolbox, percents=tuple(self.percents), centre_sd=self.centre_sd,
            mismatch_seed=self.mismatch_seed, examples=self.examples,
            per_image_figures=self.per_image_figures, **data)

    def validate(self) -> None:
        """Every setting, before the Aim 2 step writes anything (ValueError naming the flag)."""
        if self.n_images < 8:
            raise ValueError(f"--demo_images must be at least 8, got {self.n_images}")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}")
        if self.chunk_maps is not None and self.chunk_maps < 1:
            raise ValueError(f"--chunk_maps must be at least 1, got {self.chunk_maps}")
        self.aim3_config(data_dir="", models=(), saliency_dir="-").validate_settings()


def _blob(shape: tuple[int, int], centre: tuple[float, float], sd: tuple[float, float]
          ) -> np.ndarray:
    y = (np.arange(shape[0]) - centre[0]) / sd[0]
    x = (np.arange(shape[1]) - centre[1]) / sd[1]
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def synthetic_saliency(masks: np.ndarray, coincide: np.ndarray, rng: np.random.Generator
                       ) -> list[np.ndarray]:
    """One synthetic saliency map per image (see the module docstring).

    Args:
      masks: ``[n, H, W]`` bool planted rectangles.
      coincide: ``[n]`` bool, True where the blob sits on the rectangle.
      rng: the generator (distractor places, noise).

    Returns:
      ``n`` float32 maps ``[H, W]`` in [0, 1].
    """
    maps = []
    for mask, same in zip(masks, coincide, strict=True):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        if same:
            centre = ((rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2)
        else:  # anywhere a rectangle of this size fits, independently of the planted one
            centre = (rng.uniform(height / 2, mask.shape[0] - height / 2),
                      rng.uniform(width / 2, mask.shape[1] - width / 2))
        sal = 0.99 * _blob(mask.shape, centre, (height / 2, width / 2))
        sal = sal + NOISE * rng.random(mask.shape)
        maps.append(sal.astype(np.float32))
    return maps


def _masks(folder: Path, ids: list[str]) -> np.ndarray:
    out = []
    for i in ids:
        with PIL.Image.open(folder / f"{Path(i).stem}.png") as img:
            out.append(np.asarray(img) > 127)
    return np.stack(out)


def group_summary(results: dict, coincide: np.ndarray, percents) -> list[dict]:
    """RR and metrics summarised per group of images and map source."""
    rows = []
    for group, sel in zip(GROUPS, (coincide, ~coincide), strict=True):
        for source in SOURCES:
            for key in aim3_tables.metric_keys(percents):
                rows.append({"group": group, "source": source, "metric": key,
                             **aim3_tables.summarise(np.asarray(results[source][key])[sel])})
    return rows


def group_tests(results: dict, coincide: np.ndarray, percents) -> list[dict]:
    """Wilcoxon signed-rank of AIS vs each baseline within each group of images."""
    rows = []
    for group, sel in zip(GROUPS, (coincide, ~coincide), strict=True):
        for baseline in SOURCES[1:]:
            for key in aim3_tables.metric_keys(percents):
                test = paired_test(np.asarray(results["ais"][key])[sel],
                                   np.asarray(results[baseline][key])[sel])
                better = test["losses"] if key in aim3_tables.LOWER_IS_BETTER else test["wins"]
                rows.append({"group": group, "baseline": baseline, "metric": key,
                             "ais_better": better, **test})
    return rows


def _tests_markdown(rows: list[dict], keys: list[str]) -> list[str]:
    head = ["group", "AIS vs", *[f"{k}: AIS better / n, p" for k in keys]]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in GROUPS:
        for baseline in SOURCES[1:]:
            cells = [group, baseline]
            for k in keys:
                t = next(x for x in rows if x["group"] == group and x["baseline"] == baseline
                         and x["metric"] == k)
                p = "–" if np.isnan(t["p"]) else f"{t['p']:.2g}"
                cells.append(f"{t['ais_better']}/{t['n'] - t['n_nan']}, p = {p}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _group_markdown(model: str, rows: list[dict], percents) -> list[str]:
    keys = [f"rr_{p:g}" for p in percents] + [f"auc_{percents[0]:g}", "cc"]
    head = ["group", "map source", *[f"{k} mean (median)" for k in keys], "RR inf / NaN"]
    lines = [f"**{model}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in GROUPS:
        for source in SOURCES:
            cells = [group, source]
            for k in keys:
                r = next(x for x in rows if x["group"] == group and x["source"] == source
                         and x["metric"] == k)
                cells.append(f"{r['mean']:.2f} ({r['median']:.2f})")
            counts = [next(x for x in rows if x["group"] == group and x["source"] == source
                           and x["metric"] == f"rr_{p:g}") for p in percents]
            cells.append(", ".join(f"{c['n_inf']} / {c['n_nan']}" for c in counts))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_demo(cfg: Aim3DemoConfig) -> dict:
    """Builds the benchmark under ``cfg.out`` and runs Aim 3 on it.

    Returns:
      dict with ``out``, ``groups`` (``{model: group_summary rows}``), ``coinciding`` (ids),
      ``aim3`` (run_aim3's result), ``seconds`` and ``text``.
    """
    start = time.perf_counter()
    cfg.validate()
    out = Path(cfg.out)
    preflight.check_aim_folder(out, "aim3")
    aim2_out = out / "aim2"
    a2 = aim2_demo.run_demo(aim2_demo.DemoConfig(out=str(aim2_out), n_images=cfg.n_images,
                                                 batch_size=cfg.batch_size,
                                                 chunk_maps=cfg.chunk_maps,
                                                 report=cfg.report))
    data = aim2_out / "demo_data"
    first = a2["aim2"]["rows"][0]["heatmaps"]
    ids = list(first.image_ids)
    masks = _masks(data / "masks", ids)
    rng = np.random.default_rng(cfg.seed)
    coincide = np.zeros(len(ids), bool)
    coincide[rng.permutation(len(ids))[: len(ids) // 2]] = True
    sal_dir = out / "demo_data" / "saliency"
    for image_id, sal in zip(ids, synthetic_saliency(masks, coincide, rng), strict=True):
        storage.write_npy(sal_dir / f"{Path(image_id).stem}.npy", sal)
    storage.write_json(out / "demo_data" / "saliency_groups.json", {
        "coinciding": [i for i, c in zip(ids, coincide, strict=True) if c],
        "distractor": [i for i, c in zip(ids, coincide, strict=True) if not c], "seed": cfg.seed,
        "how": "Gaussian blob (SD = half the planted rectangle's height and width) on the "
               "rectangle (coinciding) or at a uniformly random place (distractor), plus "
               f"{NOISE:g} x uniform noise"})
    preamble = _describe(cfg, len(ids))
    # The networks and input size Aim 2's demo ran with, as its run.json records them.
    aim2_run = preflight.read_json(aim2_out / "run.json", "the demo's Aim 2 run.json")["config"]
    result = run_aim3(cfg.aim3_config(
        data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic",
        models=tuple((str(label), str(src)) for label, src in aim2_run["models"]),
        image_size=int(aim2_run["image_size"]), saliency_dir=str(sal_dir),
        aim2_dir=str(aim2_out), preamble=preamble,
        report=False))  # written below, once demo.json and summary.md are complete
    groups = {r["model"]: group_summary(r["results"], coincide, cfg.percents)
              for r in result["rows"]}
    tests = {r["model"]: group_tests(r["results"], coincide, cfg.percents)
             for r in result["rows"]}
    test_keys = [f"rr_{p:g}" for p in cfg.percents] + [f"auc_{cfg.percents[0]:g}"]
    seconds = time.perf_counter() - start
    text = "\n".join([
        "## Coinciding vs distractor saliency (measured in this run)", "",
        "Per group of images: mean (median) over images; RR chance = 1, AUC chance = 0.5. "
        "`ais` = Aim 2's AIS heatmap; `centre_bias` and `mismatched` = the null baselines in "
        "its place.", "",
        *[line for model, rows in groups.items()
          for line in (*_group_markdown(model, rows, cfg.percents),
                       *_tests_markdown(tests[model], test_keys), "")],
        f"Wall time {seconds:.0f} s (Aim 2's demo included).", ""])
    summary = (out / "summary.md").read_text()
    storage.write_text(out / "summary.md", summary.replace(preamble, f"{preamble}\n\n{text}", 1))
    storage.write_json(out / "demo.json", {
        "synthetic": True, "config": dataclasses.asdict(cfg), "seconds": seconds,
        "groups": {m: tables_json(rows) for m, rows in groups.items()},
        "group_tests": {m: tables_json(rows) for m, rows in tests.items()}})
    if cfg.report:
        html.write_report(out)
    return {"out": out, "groups": groups, "tests": tests, "aim3": result, "seconds": seconds,
            "coinciding": [i for i, c in zip(ids, coincide, strict=True) if c],
            "text": f"{preamble}\n\n{text}\n\n{result['text']}"}


def tables_json(rows: list[dict]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in r.items()} for r in rows]


def _describe(cfg: Aim3DemoConfig, n: int) -> str:
    return "\n".join([
        "# SYNTHETIC BENCHMARK — planted regions and synthetic saliency maps; not the paper's "
        "data, not trained networks, not TranSalNet", "",
        "This is ais_jax's embedded Aim 3 demo. Nothing was downloaded:",
        f"* Aim 2's planted-region demo ({n} images with one planted rectangle each, two "
        "synthetic networks, a \"human\" similarity that depends on the rectangle only) gives "
        "the AIS heatmaps (in `aim2/`).",
        f"* Synthetic saliency maps (seed {cfg.seed}): a Gaussian blob (SD = half the "
        "rectangle's height and width) centred on the planted rectangle in a random half of "
        "the images (\"coinciding\") and at a uniformly random place, independent of the "
        "rectangle, in the other half (\"distractor\"), plus 1 % uniform noise. Written to "
        "`demo_data/saliency/`; the groups are in `demo_data/saliency_groups.json`.",
        "* Everything after that is the code path of real data (`python -m experiments.aim3 "
        "--aim2_dir=...`).",
    ])
