"""A synthetic Aim 1 benchmark whose right answer is known, run through the real pipeline.

Nothing is downloaded. `run_demo`:

1. draws ``n`` images procedurally (coloured shapes and stripes on gradients, seeded) and saves
   them as PNG files in a plain dataset folder;
2. builds a *synthetic* network with VGG-16's shapes and saves it with
   `ais_jax.weights.save_params`: the trunk is a seeded random He-scaled VGG-16
   (`ais_jax.models.vgg16.random_params`); the head keeps the maps' contributions separable:
   the 49 pooled inputs of map k feed only fc6 units ``8k ... 8k+7`` through a zero-mean
   random block (so a map's spatial pattern, not its overall level, drives its units), scaled
   per map by its SD on the demo images and centred per unit with biases <= 0
   (`separable_head`); fc7 is the identity, so removing map k zeroes exactly its 8 embedding
   units. (In a plainly random VGG-16 every
   map's similarity pattern shares one dominant component and single-map AIS barely sees a
   planted set; this head avoids that.);
3. plants the "human" similarity: the correlation matrix of the embeddings with only a random
   set P of maps kept (``|P|`` of the maps that respond to these images), plus symmetric
   Gaussian noise of a stated size, saved as ``.npy``;
4. runs `ais_jax.study.aim1.run_aim1` on that plain dataset and checkpoint, exactly as for real
   data;
5. measures how well global AIS recovers P (overlap of the top-``|P|`` maps with P, ranking
   AUC) and reports it with Full vs Retained out-of-sample scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import PIL.ImageDraw
import scipy.stats

from ais_jax import storage
from ais_jax.data.files import write_image_ids
from ais_jax.engine import activations
from ais_jax.engine.ablation import full_embeddings
from ais_jax.engine.similarity import corr_matrix
from ais_jax.fitting import compare
from ais_jax.models.vgg16 import BLOCK, EMBED_DIM, NUM_MAPS, random_params
from ais_jax.report import figures, html
from ais_jax.study import aim1
from ais_jax.weights import load_vgg16, save_params

UNITS_PER_MAP = EMBED_DIM // NUM_MAPS  # 8 fc6 units per map
DEMO_CLASSES = 1000
DEMO_RECIPE_VERSION = 3  # part of the synthetic checkpoint's identity


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The synthetic benchmark's size and seeds.

    Attributes:
      out: results directory (the generated dataset goes to ``out/demo_data``; the synthetic
        network to ``$AIS_JAX_CACHE/demo/``).
      n_images: images drawn (the paper's datasets have 120).
      image_size: side of the square images (the paper's inputs are 224).
      planted: ``|P|``, maps the "human" similarity is built from.
      noise: SD of the added noise, relative to the SD of the clean similarities' upper
        triangle.
      folds: test chunks per shuffle.
      seeds: legacy shuffling seeds (the paper used 8).
      seed: seed of the images, network, planted set and noise.
      batch_size: images per trunk call.
      methods: Aim 1 methods on the same folds (`ais_jax.fitting.compare.METHODS`: greedy,
        softmask, reweight); the soft mask's recovery of P is reported beside greedy's.
        ``python -m experiments.aim1 --demo`` runs all three; the default here keeps library
        callers (and the test suite's small demo) at greedy's cost.
      report: write ``out/report.html`` at the end (`ais_jax.report.html`).
    """

    out: str
    n_images: int = 60
    image_size: int = 224
    planted: int = 64
    noise: float = 0.05
    folds: int = 5
    seeds: tuple[int, ...] = (111,)
    seed: int = 0
    batch_size: int = 8
    methods: tuple[str, ...] = ("greedy",)
    report: bool = True


def draw_image(rng: np.random.Generator, size: int) -> PIL.Image.Image:
    """One procedural RGB image: a colour gradient, stripes and a few filled shapes."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    base = c0 * (1 - t) + c1 * t  # [size, size, 3]
    if rng.random() < 0.5:  # stripes of a random frequency and direction
        freq, phase, theta = rng.uniform(3, 20), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
        base = base + 40 * wave[..., None] * rng.uniform(-1, 1, 3)
    img = PIL.Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = PIL.ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 6)):
        x0, y0 = rng.uniform(-0.2, 0.9, 2) * size
        w, h = rng.uniform(0.1, 0.6, 2) * size
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = [x0, y0, x0 + w, y0 + h]
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            pts = rng.uniform(0, 1, (3, 2)) * [w, h] + [x0, y0]
            draw.polygon([tuple(p) for p in pts], fill=colour)
    return img


def write_images(folder: Path, n: int, size: int, rng: np.random.Generator) -> list[Path]:
    """Draws ``n`` images and writes them as ``img_000.png`` ... (sorted = dataset order)."""
    paths = []
    for i in range(n):
        path = folder / f"img_{i:03d}.png"
        with storage.atomic_path(path) as tmp:
            draw_image(rng, size).save(tmp, format="PNG")
        paths.append(path)
    return paths


def separable_head(blocks: np.ndarray, rng: np.random.Generator,
                   num_classes: int = DEMO_CLASSES) -> dict:
    """A VGG-16-shaped head in which each map feeds only its own 8 fc6 units.

    Map k's 49 pooled inputs reach fc6 units ``8k ... 8k+7`` through a zero-mean random block
    (a map's spatial pattern drives its units, not its overall level), scaled by 1 / the map's
    SD over ``blocks`` (so that no few loud maps dominate every similarity). Each unit is then
    centred over ``blocks``: its sign is chosen so that its mean pre-activation is >= 0 and its
    bias is minus that mean. Centring removes the image-level activity that all maps share (in
    a plain random VGG-16 it makes every map's similarity pattern alike), and because every
    bias is <= 0 an ablated unit outputs ReLU(bias) = 0 exactly. fc7 is the identity with zero
    bias, so the embedding is the 4096 fc6 units after ReLU and removing map k zeroes exactly
    its own 8 units.

    Args:
      blocks: ``[n, 512, 49]`` pooled trunk outputs of the images the head is calibrated on.
      rng: generator of the random blocks and fc8.
      num_classes: fc8 width.

    Returns:
      ``{'fc6': {'kernel' [25088, 4096], 'bias' [4096]}, 'fc7': ..., 'fc8': ...}`` float32.
    """
    w = rng.standard_normal((NUM_MAPS, BLOCK, UNITS_PER_MAP))  # [512, 49, 8]
    w -= w.mean(axis=1, keepdims=True)
    sd = blocks.std(axis=(0, 2))  # [512]; 0 for a map silent on every image
    w *= (1.0 / np.where(sd > 0, sd, 1.0) / np.sqrt(BLOCK))[:, None, None]
    mean_pre = np.einsum("nkb,kbu->ku", blocks.astype(np.float64), w) / blocks.shape[0]
    w *= np.where(mean_pre < 0, -1.0, 1.0)[:, None, :]
    bias = -np.abs(mean_pre)  # [512, 8], <= 0
    fc6 = np.zeros((NUM_MAPS, BLOCK, NUM_MAPS, UNITS_PER_MAP), np.float32)
    fc6[np.arange(NUM_MAPS), :, np.arange(NUM_MAPS), :] = w
    return {
        "fc6": {"kernel": fc6.reshape(NUM_MAPS * BLOCK, EMBED_DIM),
                "bias": np.asarray(bias.reshape(EMBED_DIM), np.float32)},
        "fc7": {"kernel": np.eye(EMBED_DIM, dtype=np.float32),
                "bias": np.zeros(EMBED_DIM, np.float32)},
        "fc8": {"kernel": np.asarray(rng.standard_normal((EMBED_DIM, num_classes)) / 64.0,
                                     np.float32),
                "bias": np.zeros(num_classes, np.float32)},
    }


def network_identity(cfg: "DemoConfig", images_digest: str) -> str:
    """The synthetic network's stand-in for a checkpoint sha256: recipe, seed and images."""
    return hashlib.sha256(
        f"ais_jax demo network recipe {DEMO_RECIPE_VERSION} seed {cfg.seed} size "
        f"{cfg.image_size} images {images_digest}".encode()).hexdigest()


def build_network(path: Path, cfg: "DemoConfig", image_paths: list[Path]) -> None:
    """Makes the synthetic network for these images and saves it with `save_params`.

    The trunk's activations go through the activation cache under the network's identity (so
    rebuilding the network does not rerun the trunk) and are then filed under the saved
    weights' tensor digest, so the Aim 1 run that follows reads them back.
    """
    identity = network_identity(cfg, activations.images_digest(image_paths))
    trunk = random_params(jax.random.key(cfg.seed), DEMO_CLASSES)["trunk"]
    acts = activations.cached_activations(trunk, identity, image_paths,
                                          image_size=cfg.image_size,
                                          batch_size=cfg.batch_size, desc="demo trunk")
    blocks = np.asarray(activations.blocks_from_acts(acts.value))  # [n, 512, 49]
    head = separable_head(blocks, np.random.default_rng(cfg.seed))
    written = save_params(path, {"trunk": trunk, "head": head}, {
        "model": "demo_synthetic_vgg16", "source_file": "generated by ais_jax.study.aim1_demo",
        "source_sha256": identity, "num_classes": str(DEMO_CLASSES),
        "description": "SYNTHETIC: random He-scaled VGG-16 trunk, map-separable head "
                       "calibrated on the demo images (see ais_jax.study.aim1_demo)",
    })
    activations.store_activations(written["tensors_sha256"], image_paths, acts.value,
                                  image_size=cfg.image_size)


def demo_network(path: Path, cfg: "DemoConfig", image_paths: list[Path]) -> tuple[dict, dict]:
    """Loads the synthetic network from ``path``, (re)building it if absent or not this one."""
    identity = network_identity(cfg, activations.images_digest(image_paths))
    if path.exists():
        try:
            params, meta = load_vgg16(path)
            if meta.get("source_sha256") == identity:
                return params, meta
        except ValueError:  # an older or damaged file: rebuild it
            pass
    build_network(path, cfg, image_paths)
    return load_vgg16(path)


def plant_similarity(head: dict, blocks: np.ndarray, planted: np.ndarray, noise: float,
                     rng: np.random.Generator) -> np.ndarray:
    """The "human" matrix: corrcoef of embeddings with only the planted maps kept, plus noise.

    Args:
      head: head parameters.
      blocks: ``[n, 512, 49]`` pooled fc6 inputs.
      planted: ``[|P|]`` map indices kept.
      noise: noise SD relative to the SD of the clean upper triangle.
      rng: noise generator.

    Returns:
      ``[n, n]`` float64, symmetric, unit diagonal.
    """
    keep = np.zeros(NUM_MAPS, np.float32)
    keep[planted] = 1.0
    emb, _ = full_embeddings(head, jnp.asarray(blocks * keep[None, :, None]))
    clean = np.asarray(corr_matrix(emb), np.float64)  # [n, n]
    n = clean.shape[0]
    iu = np.triu_indices(n, k=1)
    eps = np.zeros((n, n))
    eps[iu] = rng.standard_normal(iu[0].size) * noise * clean[iu].std()
    human = clean + eps + eps.T
    np.fill_diagonal(human, 1.0)
    return human


def recovery(ais: np.ndarray, planted: np.ndarray) -> dict:
    """How well ranking by AIS finds the planted maps.

    Args:
      ais: ``[512]`` global AIS.
      planted: ``[|P|]`` planted map indices.

    Returns:
      dict: ``overlap`` (fraction of the top-|P| maps that are planted), ``chance_overlap``
      (its expectation under a random ranking, |P| / 512), ``auc`` (probability that a planted
      map has higher AIS than an unplanted one, ties counting one half; Mann-Whitney U / (|P|
      (512 - |P|))).
    """
    is_planted = np.zeros(ais.size, bool)
    is_planted[planted] = True
    top = np.argsort(-ais, kind="stable")[: planted.size]
    u = scipy.stats.mannwhitneyu(ais[is_planted], ais[~is_planted]).statistic
    return {
        "overlap": float(is_planted[top].mean()),
        "chance_overlap": planted.size / ais.size,
        "auc": float(u / (is_planted.sum() * (~is_planted).sum())),
    }


def _describe(cfg: DemoConfig, live: int) -> str:
    return "\n".join([
        "# SYNTHETIC BENCHMARK — not the paper's data, not a trained network",
        "",
        "This is ais_jax's embedded planted-truth demo. Nothing was downloaded:",
        f"* {cfg.n_images} images ({cfg.image_size}×{cfg.image_size}) drawn by code (gradients,"
        f" stripes, shapes; seed {cfg.seed}); the paper's datasets have 120 real photos.",
        "* Network: VGG-16 shapes; trunk = seeded random He-scaled VGG-16 weights; head built so"
        f" that each map's 49 pooled inputs feed only its own {UNITS_PER_MAP} fc6 units through"
        " a zero-mean random block scaled by 1/(the map's SD on these images), each unit"
        " centred over these images by a sign flip and a bias <= 0; fc7 = identity (ablating"
        " a map zeroes exactly its own 8 embedding units).",
        f"* \"Human\" similarity = correlation of the embeddings with only a planted set P of"
        f" {cfg.planted} maps kept (drawn among the {live} maps that respond to these images),"
        f" plus symmetric Gaussian noise with SD = {cfg.noise:g} × SD of the clean similarities.",
        f"* Cross-validation: {cfg.folds} folds × {len(cfg.seeds)} seed(s) ="
        f" {cfg.folds * len(cfg.seeds)} folds (the paper: 5 × 8 = 40).",
        "* Everything after that is the same code path as real data"
        " (`python -m experiments.aim1`).",
    ])


def fold_recovery(records: list[dict], planted: np.ndarray, methods: tuple[str, ...]) -> dict:
    """Per-fold recovery of P on the training images, greedy beside the soft mask.

    Greedy ranks maps by the fold's training AIS, the soft mask by its fitted ``m``; both are
    scored with `recovery` (AUC, top-|P| overlap), and each selected set (S*, the hard set
    ``{m > 0.5}``) by the fraction of it that is planted. Means over folds.
    """
    is_planted = np.isin(np.arange(NUM_MAPS), planted)

    def summary(scores, sets):
        recs = [recovery(np.asarray(s, np.float64), planted) for s in scores]
        return {"auc": float(np.mean([r["auc"] for r in recs])),
                "overlap": float(np.mean([r["overlap"] for r in recs])),
                "set_planted_fraction": float(np.mean([is_planted[s].mean() if len(s) else 0.0
                                                       for s in sets])),
                "mean_set_size": float(np.mean([len(s) for s in sets]))}

    out = {"greedy": summary([np.nan_to_num(np.array(r["ais_train"], np.float64),
                                            nan=-np.inf) for r in records],
                             [np.asarray(r["order"][: r["set_size"]]) for r in records])}
    if "softmask" in methods:
        out["softmask"] = summary([r["softmask"]["mask"] for r in records],
                                  [np.asarray(r["softmask"]["hard_set"], int) for r in records])
    return out


def _methods_markdown(fold_rec: dict, method_rows: list[dict]) -> list[str]:
    lines = []
    if "softmask" in fold_rec:
        g, m = fold_rec["greedy"], fold_rec["softmask"]
        lines.append(
            f"* Per fold, on the training images: greedy (training AIS) AUC {g['auc']:.3f},"
            f" top-|P| overlap {g['overlap'] * 100:.1f}%, |S*| {g['mean_set_size']:.1f} of which"
            f" {g['set_planted_fraction'] * 100:.1f}% planted; soft mask (m) AUC {m['auc']:.3f},"
            f" top-|P| overlap {m['overlap'] * 100:.1f}%, hard set {m['mean_set_size']:.1f} maps"
            f" of which {m['set_planted_fraction'] * 100:.1f}% planted.")
    for r in method_rows:
        lines.append(
            f"* {r['method']}: out-of-sample R² {r['mean_test']:.3f} (Full {r['mean_full']:.3f},"
            f" greedy Retained {r['mean_greedy']:.3f}; vs greedy t = {r['t_vs_greedy']:.2f},"
            f" p = {r['p_vs_greedy']:.2g}); {r['mean_seconds']:.1f} s per fold.")
    return lines


def _recovery_markdown(rec: dict, row: dict, set_sizes: np.ndarray, fold_overlap: float,
                       cfg: DemoConfig, seconds: float, extra: list[str] = ()) -> str:
    return "\n".join([
        "## Planted-truth recovery (measured in this run)",
        "",
        f"* Global AIS on all {cfg.n_images} images: {rec['overlap'] * 100:.1f}% of the top"
        f" {cfg.planted} maps are planted (chance {rec['chance_overlap'] * 100:.1f}%);"
        f" ranking AUC = {rec['auc']:.3f} (chance 0.5).",
        f"* Mean |S*| over folds = {set_sizes.mean():.1f} (|P| = {cfg.planted});"
        f" on average {fold_overlap * 100:.1f}% of the maps in S* are planted.",
        f"* Out-of-sample R²: Full {row['mean_full']:.3f} vs Retained {row['mean_retained']:.3f}"
        f" (paired SE {row['se_paired']:.3f}); t = {row['t']:.2f}, p = {row['p']:.2g}"
        f" over {row['n_folds']} folds.",
        f"* Wall time {seconds:.0f} s (JAX backend: {jax.default_backend()})"
        + (f"; {row['folds_resumed']} finished folds were reused from an earlier run in this"
           " folder." if row["folds_resumed"] else "."),
        *extra,
        "",
    ])


def run_demo(cfg: DemoConfig) -> dict:
    """Builds the synthetic benchmark under ``cfg.out`` and runs Aim 1 on it.

    Returns:
      dict with ``out``, ``recovery`` (global AIS on all images), ``row`` (the Aim 1 results
      row), ``set_sizes`` ``[folds]``, ``fold_overlap`` (mean fraction of S* that is planted),
      ``planted`` ``[|P|]``, ``seconds`` and ``text`` (the printed report).
    """
    start = time.perf_counter()
    if not 1 <= cfg.planted < NUM_MAPS:
        raise ValueError(f"planted must be in [1, {NUM_MAPS}), got {cfg.planted}")
    out = Path(cfg.out)
    data = out / "demo_data"
    rng = np.random.default_rng(cfg.seed)
    paths = write_images(data / "images", cfg.n_images, cfg.image_size, rng)
    # 0.5 GB: kept in the cache, not in the results folder; reused when the demo is rerun.
    ckpt = storage.cache_dir() / "demo" / "synthetic_vgg16.safetensors"
    params, meta = demo_network(ckpt, cfg, paths)
    acts = activations.cached_activations(params["trunk"], meta["tensors_sha256"], paths,
                                          image_size=cfg.image_size,
                                          batch_size=cfg.batch_size, desc="demo trunk")
    blocks = np.asarray(activations.blocks_from_acts(acts.value))  # [n, 512, 49]
    live = np.flatnonzero(blocks.std(axis=(0, 2)) > 0)
    if live.size < cfg.planted:
        raise ValueError(f"only {live.size} maps respond to the demo images; "
                         f"cannot plant {cfg.planted}")
    planted = np.sort(rng.choice(live, cfg.planted, replace=False))
    human = plant_similarity(params["head"], blocks, planted, cfg.noise, rng)
    storage.write_npy(data / "similarity.npy", human)
    write_image_ids(data, [p.name for p in paths])  # the matrix's row order
    storage.write_json(data / "planted_maps.json", {"planted": planted.tolist(),
                                                    "noise": cfg.noise, "seed": cfg.seed})
    preamble = _describe(cfg, live.size)
    records = []
    result = aim1.run_aim1(aim1.Aim1Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=(("synthetic", str(ckpt)),),
        folds=cfg.folds, seeds=tuple(cfg.seeds), score="r2", image_size=cfg.image_size,
        batch_size=cfg.batch_size, preamble=preamble, methods=tuple(cfg.methods),
        report=False),  # written below, once demo.json and summary.md are complete
        on_fold=records.append)
    row = result["rows"][0]
    rec = recovery(row["global_ais"], planted)
    is_planted = np.isin(np.arange(NUM_MAPS), planted)
    set_sizes = np.array([r["set_size"] for r in records])
    fold_overlap = float(np.mean([is_planted[np.asarray(r["order"][: r["set_size"]])].mean()
                                  for r in records]))
    curves = [np.array([np.nan if v is None else v for v in r[k]]) for k in
              ("train_curve", "test_curve") for r in records]
    train_curves, test_curves = np.split(np.stack(curves), 2)
    figures.save_figure(figures.recovery_figure(row["global_ais"], is_planted, train_curves,
                                                test_curves, planted_size=cfg.planted),
                        out / "demo_recovery.png")
    methods = compare.check_methods(cfg.methods)
    fold_rec = fold_recovery(records, planted, methods)
    seconds = time.perf_counter() - start
    text = _recovery_markdown(rec, row, set_sizes, fold_overlap, cfg, seconds,
                              _methods_markdown(fold_rec, row.get("method_rows", [])))
    summary = (out / "summary.md").read_text()
    storage.write_text(out / "summary.md", summary.replace(preamble, f"{preamble}\n\n{text}", 1))
    storage.write_json(out / "demo.json", {
        "synthetic": True, "config": dataclasses.asdict(cfg), "planted": planted.tolist(),
        "responsive_maps": int(live.size), "recovery": rec, "mean_set_size": set_sizes.mean(),
        "fold_planted_fraction": fold_overlap,
        "fold_recovery": fold_rec,
        "methods": {m["method"]: {k: m[k] for k in ("mean_test", "mean_full", "mean_greedy",
                                                     "t", "p", "t_vs_greedy", "p_vs_greedy",
                                                     "mean_set_size", "mean_seconds")}
                    for m in row.get("method_rows", [])},
        "full_vs_retained": {k: row[k] for k in ("mean_full", "mean_retained", "se_paired",
                                                 "t", "p", "n")},
        "seconds": seconds,
    })
    if cfg.report:
        html.write_report(out)
    return {"out": out, "checkpoint": ckpt, "recovery": rec, "row": row, "set_sizes": set_sizes,
            "fold_overlap": fold_overlap, "planted": planted, "seconds": seconds,
            "fold_recovery": fold_rec,
            "text": f"{preamble}\n\n{text}"}
