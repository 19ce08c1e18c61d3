"""A synthetic Aim 2 benchmark with a planted spatial truth, run through the real pipeline.

Nothing is downloaded. `run_demo`:

1. draws ``n`` non-square images (``height x width``): a busy background (a colour gradient
   under 8-14 filled ellipses and rectangles) and one planted rectangle at a random place
   holding an oriented grating whose orientation, period, phase and colours vary by image;
   the rectangle's mask is saved as a PNG beside the images (``demo_data/masks/<id>.png``);
2. builds two synthetic networks with VGG-16's shapes from two seeds, exactly as the Aim 1
   demo does (`ais_jax.study.aim1_demo.demo_network`: random He-scaled trunk, map-separable head
   calibrated on these images), standing in for the two checkpoints;
3. plants the "human" similarity so that it depends on the region only: for each network, the
   correlation matrix of the embeddings computed from the conv5_3 activations with every grid
   cell weighted by the share of its pixels inside the region (cells outside are zero), the two
   networks' matrices averaged, plus symmetric Gaussian noise;
4. runs `ais_jax.study.aim2.run_aim2` on that plain dataset with both networks;
5. measures, per network and over images, the share of heatmap mass inside the region against
   the region's share of the image (chance), and the relative risk of the top-p% heatmap pixels
   for the region (p = 5, 10, 15; chance 1), beside the same numbers for a control heatmap
   that weights all 512 maps equally (where the network is active, without AIS).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import PIL.Image
import PIL.ImageDraw

from ais_jax import preflight, storage
from ais_jax.data.files import write_image_ids
from ais_jax.engine import activations
from ais_jax.engine.ablation import full_embeddings
from ais_jax.engine.similarity import corr_matrix
from ais_jax.explain import heatmaps as hm
from ais_jax.models.vgg16 import pool_blocks
from ais_jax.report import html
from ais_jax.stats.spatial import mass_share, relative_risk
from ais_jax.study import aim1_demo
from ais_jax.study.aim2 import Aim2Config, run_aim2

THRESHOLDS = (5, 10, 15)
STRIDE = 16  # conv5_3 cells per pixel side for inputs that are multiples of 16


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The synthetic benchmark's size and seeds.

    Attributes:
      out: results directory (images, masks and the planted matrix go to ``out/demo_data``;
        the two synthetic networks to ``$AIS_JAX_CACHE/demo/``).
      n_images: images drawn (the paper's datasets have 120).
      height, width: image size; multiples of 16 with ``height <= width`` so the network input
        is the image itself (shorter side = ``height``) and the conv5_3 grid is
        ``height/16 x width/16``.
      region: side of the planted rectangle as a fraction of the image's sides (range).
      noise: SD of the added noise, relative to the SD of the clean similarities.
      seed: seed of the images and noise.
      network_seeds: seeds of the two synthetic networks.
      batch_size: images per trunk call.
      chunk_maps, rsatoolbox: as `ais_jax.study.config.StudyConfig`.
      settings: more `Aim2Config` fields (overlays, full_maps, full_dtype, examples,
        colormap, image_weight), as the command line gives them.
      report: write ``out/report.html`` at the end (`ais_jax.report.html`).
    """

    out: str
    n_images: int = 40
    height: int = 160
    width: int = 224
    region: tuple[float, float] = (0.3, 0.4)
    noise: float = 0.05
    seed: int = 0
    network_seeds: tuple[int, int] = (1, 2)
    batch_size: int = 8
    chunk_maps: int | None = None
    rsatoolbox: bool = False
    report: bool = True
    settings: dict = dataclasses.field(default_factory=dict)

    def aim2_config(self, **data) -> Aim2Config:
        """The Aim 2 config of this demo, on ``data`` (the dataset and models fields)."""
        return Aim2Config(out=self.out, batch_size=self.batch_size, chunk_maps=self.chunk_maps,
                          rsatoolbox=self.rsatoolbox, **self.settings, **data)

    def validate(self) -> None:
        """Every setting, before anything is written (ValueError naming the flag)."""
        if self.height % STRIDE or self.width % STRIDE or self.height > self.width:
            raise ValueError(f"demo images must be multiples of {STRIDE} with height <= width, "
                             f"got {self.height}x{self.width}")
        if self.n_images < 8:
            raise ValueError(f"--demo_images must be at least 8, got {self.n_images}")
        self.aim2_config(data_dir="", models=(("synthetic", "-"),)).validate()


def _background(rng: np.random.Generator, height: int, width: int) -> PIL.Image.Image:
    """A busy background without stripes: a colour gradient under 8-14 filled shapes."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    base = rng.uniform(0, 255, 3) * (1 - t) + rng.uniform(0, 255, 3) * t
    img = PIL.Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = PIL.ImageDraw.Draw(img)
    for _ in range(rng.integers(8, 15)):
        x0, y0 = rng.uniform(-0.1, 1.0, 2) * (width, height)
        w, h = rng.uniform(0.08, 0.3, 2) * max(height, width)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h],
                                                                 fill=colour)
    return img


def _grating(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An oriented two-colour grating ``[H, W, 3]`` (random frequency, phase, orientation)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    period = rng.uniform(5, 14)  # pixels
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / period
                              + phase)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return c0 * (1 - wave[..., None]) + c1 * wave[..., None]


def draw_planted(rng: np.random.Generator, height: int, width: int,
                 region: tuple[float, float]) -> tuple[PIL.Image.Image, np.ndarray]:
    """One image: a busy background of shapes and one planted rectangle holding a grating.

    The grating's orientation, period, phase and colours vary from image to image, and the
    "human" similarity is built from the network's response inside the rectangle only, so
    the maps that carry it are the ones that respond to gratings, i.e. inside the rectangle.

    Returns:
      (RGB image, planted mask ``[H, W]`` bool).
    """
    img = _background(rng, height, width)
    rh = int(round(rng.uniform(*region) * height))
    rw = int(round(rng.uniform(*region) * width))
    top, left = int(rng.integers(0, height - rh + 1)), int(rng.integers(0, width - rw + 1))
    patch = np.clip(_grating(rng, rh, rw), 0, 255).astype(np.uint8)
    img.paste(PIL.Image.fromarray(patch, "RGB"), (left, top))
    mask = np.zeros((height, width), bool)
    mask[top:top + rh, left:left + rw] = True
    return img, mask


def write_dataset(folder: Path, cfg: DemoConfig) -> tuple[list[Path], np.ndarray]:
    """Draws the images and masks; returns (image paths, planted masks ``[n, H, W]`` bool)."""
    rng = np.random.default_rng(cfg.seed)
    paths, masks = [], []
    for i in range(cfg.n_images):
        img, mask = draw_planted(rng, cfg.height, cfg.width, cfg.region)
        path = folder / "images" / f"img_{i:03d}.png"
        with storage.atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
        with storage.atomic_path(folder / "masks" / f"img_{i:03d}.png") as tmp:
            PIL.Image.fromarray(mask.astype(np.uint8) * 255, "L").save(tmp, format="PNG")
        paths.append(path)
        masks.append(mask)
    return paths, np.stack(masks)


def grid_masks(masks: np.ndarray) -> np.ndarray:
    """Share of each conv5_3 cell's 16x16 pixels inside the region: ``[n, H/16, W/16]``."""
    n, h, w = masks.shape
    return masks.reshape(n, h // STRIDE, STRIDE, w // STRIDE, STRIDE).mean(axis=(2, 4))


def region_similarity(params: dict, acts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Correlation matrix of the embeddings of the region's activations only: ``[n, n]``."""
    blocks = pool_blocks(jnp.asarray(acts * cells[..., None], jnp.float32))  # [n, 512, 49]
    emb, _ = full_embeddings(params["head"], blocks)
    return np.asarray(corr_matrix(emb), np.float64)


def _describe(cfg: DemoConfig) -> str:
    return "\n".join([
        "# SYNTHETIC BENCHMARK — planted spatial truth; not the paper's data, not trained "
        "networks", "",
        "This is ais_jax's embedded Aim 2 demo. Nothing was downloaded:",
        f"* {cfg.n_images} images of {cfg.height}×{cfg.width} (H×W) drawn by code (seed "
        f"{cfg.seed}): a busy background (a colour gradient under 8–14 filled ellipses and "
        f"rectangles) and one planted rectangle ({cfg.region[0]:.0%}–{cfg.region[1]:.0%} of "
        "each side, at a random place) holding an oriented grating whose orientation, period, "
        "phase and colours vary from image to image. Masks: demo_data/masks/<id>.png.",
        f"* Two networks (seeds {cfg.network_seeds[0]} and {cfg.network_seeds[1]}) stand in for "
        "the two checkpoints: VGG-16 shapes, seeded random He-scaled trunk, a map-separable "
        "head calibrated on these images (as the Aim 1 demo, `ais_jax.study.aim1_demo`).",
        "* \"Human\" similarity = the average over the two networks of the correlation of "
        "embeddings computed from the conv5_3 activations inside the region only (each grid "
        "cell weighted by its share of region pixels), plus symmetric Gaussian noise with "
        f"SD = {cfg.noise:g} × SD of the clean similarities. So only the region matters.",
        "* Everything after that is the code path of real data (`python -m experiments.aim2`).",
    ])


def spatial_recovery(heat: list[np.ndarray], masks: np.ndarray) -> dict:
    """Mean over images of mass share and RR at each threshold, with counts of inf/NaN."""
    share = np.array([mass_share(h, m) for h, m in zip(heat, masks, strict=True)])
    out = {"mass_in_region": float(np.nanmean(share)),
           "chance": float(masks.mean(axis=(1, 2)).mean()),
           "images_above_chance": int((share > masks.mean(axis=(1, 2))).sum()),
           "n_images": len(heat)}
    for p in THRESHOLDS:
        rr = np.array([relative_risk(h, m, p) for h, m in zip(heat, masks, strict=True)])
        fin = np.isfinite(rr)
        out[f"rr{p}_mean"] = float(rr[fin].mean()) if fin.any() else float("nan")
        out[f"rr{p}_sd"] = float(rr[fin].std(ddof=1)) if fin.sum() > 1 else float("nan")
        out[f"rr{p}_median"] = float(np.median(np.where(np.isnan(rr), -np.inf, rr)))
        out[f"rr{p}_inf"] = int(np.isposinf(rr).sum())
        out[f"rr{p}_nan"] = int(np.isnan(rr).sum())
    return out


def _table(results: dict) -> list[str]:
    lines = ["| network | heatmap | mass in region | region share (chance) | images above "
             "chance | " + " | ".join(f"RR {p}% mean ± SD (median; ∞)" for p in THRESHOLDS)
             + " |", "|---|---|---|---|---|" + "---|" * len(THRESHOLDS)]
    for (model, kind), r in results.items():
        rr = " | ".join(f"{r[f'rr{p}_mean']:.2f} ± {r[f'rr{p}_sd']:.2f} "
                        f"({r[f'rr{p}_median']:.2f}; {r[f'rr{p}_inf']})" for p in THRESHOLDS)
        lines.append(f"| {model} | {kind} | {r['mass_in_region']:.3f} | {r['chance']:.3f} "
                     f"| {r['images_above_chance']}/{r['n_images']} | {rr} |")
    return lines


def run_demo(cfg: DemoConfig) -> dict:
    """Builds the planted-region benchmark under ``cfg.out`` and runs Aim 2 on it.

    Returns:
      dict with ``out``, ``recovery`` (``{(network, 'AIS'|'uniform'): metrics}``), ``aim2``
      (run_aim2's result), ``seconds`` and ``text`` (the printed report).
    """
    start = time.perf_counter()
    cfg.validate()
    out = Path(cfg.out)
    preflight.check_aim_folder(out, "aim2")
    data = out / "demo_data"
    paths, masks = write_dataset(data, cfg)
    cells = grid_masks(masks)  # [n, h, w]
    labels = [f"synthetic_{s}" for s in cfg.network_seeds]
    ckpts, clean, trunk_acts = [], [], {}
    for label, seed in zip(labels, cfg.network_seeds, strict=True):
        net_cfg = aim1_demo.DemoConfig(out=str(out), image_size=cfg.height, seed=seed,
                                  batch_size=cfg.batch_size)
        ckpt = storage.cache_dir() / "demo" / f"aim2_synthetic_seed{seed}.safetensors"
        params, meta = aim1_demo.demo_network(ckpt, net_cfg, paths)
        acts = activations.cached_activations(params["trunk"], meta["tensors_sha256"], paths,
                                              image_size=cfg.height, batch_size=cfg.batch_size,
                                              desc=f"demo trunk {seed}")
        clean.append(region_similarity(params, acts.value, cells))
        trunk_acts[label] = acts.value  # [n, h, w, 512], for the control heatmap
        ckpts.append(ckpt)
    rng = np.random.default_rng(cfg.seed + 1)
    base = np.mean(clean, axis=0)
    n = base.shape[0]
    iu = np.triu_indices(n, k=1)
    eps = np.zeros((n, n))
    eps[iu] = rng.standard_normal(iu[0].size) * cfg.noise * base[iu].std()
    human = base + eps + eps.T
    np.fill_diagonal(human, 1.0)
    storage.write_npy(data / "similarity.npy", human)
    write_image_ids(data, [p.name for p in paths])  # the matrix's row order
    preamble = _describe(cfg)
    result = run_aim2(cfg.aim2_config(
        data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic",
        models=tuple(zip(labels, map(str, ckpts), strict=True)),
        image_size=cfg.height, preamble=preamble,
        report=False))  # written below, once demo.json and summary.md are complete
    recovery = {}
    for row in result["rows"]:
        maps = row["heatmaps"]
        heat = [maps.original(i) for i in range(n)]
        recovery[(row["model"], "AIS")] = spatial_recovery(heat, masks)
        # The control: all 512 maps weighted 1/512, the same upsampling.
        uniform = hm.upsample_each(trunk_acts[row["model"]].mean(axis=-1), maps.sizes)
        recovery[(row["model"], "uniform (control)")] = spatial_recovery(uniform, masks)
    seconds = time.perf_counter() - start
    text = "\n".join([
        "## Planted-region recovery (measured in this run)", "",
        "Mass in region: share of the heatmap's total inside the planted rectangle, mean over "
        "images; chance = the rectangle's share of the image. RR p%: P(top p% | region) / "
        "P(top p% | outside), top p% = pixels above the (100 − p)th percentile (ties "
        "excluded); chance = 1; mean ± SD over finite values, ∞ = images with no top pixel "
        "outside the region. 'uniform (control)' weights all 512 maps equally instead of by "
        "AIS. The control is above chance too (gratings drive a random trunk harder than flat "
        "shapes do), so part of the concentration is simply where the network is active; "
        "what the AIS weighting adds is the AIS rows beyond the control rows.", "",
        *_table(recovery), "",
        f"Wall time {seconds:.0f} s.", ""])
    summary = (out / "summary.md").read_text()
    storage.write_text(out / "summary.md", summary.replace(preamble, f"{preamble}\n\n{text}", 1))
    storage.write_json(out / "demo.json", {
        "synthetic": True, "config": dataclasses.asdict(cfg), "seconds": seconds,
        "recovery": [{"network": m, "heatmap": k, **v} for (m, k), v in recovery.items()]})
    if cfg.report:
        html.write_report(out)
    return {"out": out, "recovery": recovery, "aim2": result, "seconds": seconds,
            "text": f"{preamble}\n\n{text}"}

