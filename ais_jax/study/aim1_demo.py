"""A synthetic Aim 1 benchmark whose right answer is known, run through the real pipeline.

Nothing is downloaded. `run_demo`:

1. draws ``n`` images procedurally (coloured shapes and stripes on gradients, seeded) and saves
   them as PNG files in a plain dataset folder;
2. builds a *synthetic* network with the shapes of a registered architecture
   (``DemoConfig.model``, default VGG-16) and saves it with `ais_jax.weights.save_params`: the
   trunk is that architecture's seeded random weights (``Architecture.random_params``); for a
   flatten -> linear head the head keeps the maps' contributions separable: the B (VGG-16: 49)
   pooled inputs of map k feed only fc6 units ``u k ... u k + u - 1`` (VGG-16: u = 8) through
   a zero-mean random block (so a map's spatial pattern, not its overall level, drives its
   units), scaled per map by its SD on the demo images and centred per unit with biases <= 0
   (`separable_head`); fc7 is the identity, so removing map k zeroes exactly its u embedding
   units. (In a plainly random VGG-16 every
   map's similarity pattern shares one dominant component and single-map AIS barely sees a
   planted set; this head avoids that.) For a global-average-pool head the embedding is
   already separable (coordinate k is map k's mean), so its random head is used as it is;
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
from ais_jax.models import registry
from ais_jax.models.registry import Architecture
from ais_jax.report import figures, html
from ais_jax.study import aim1
from ais_jax.weights import ARCHITECTURE_TITLES, load_model, save_params

DEMO_CLASSES = 1000
DEMO_RECIPE_VERSION = 3  # part of the synthetic checkpoint's identity
DEFAULT_MODEL = "vgg16"  # its demo files are exactly those of before other architectures
SCORE_NAMES = {"r2": "R²", "rho": "ρ"}


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
      score, rsatoolbox: as `ais_jax.study.aim1.Aim1Config` (``--score``, ``--rsatoolbox``).
      model: the registered architecture (`ais_jax.models.registry`) the synthetic network
        has; P is drawn among its maps.
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
    score: str = "r2"
    rsatoolbox: bool = False
    model: str = DEFAULT_MODEL

    @property
    def arch(self) -> Architecture:
        """The registered architecture (ValueError listing the known ones)."""
        return registry.architecture(self.model)
    report: bool = True


def display_name(arch: Architecture) -> str:
    """``'VGG-16'`` for ``vgg16``, ...; the registry name for others."""
    return ARCHITECTURE_TITLES.get(arch.name, arch.name)


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
                   num_classes: int = DEMO_CLASSES, embed_dim: int = 4096) -> dict:
    """A flatten -> linear head in which each map feeds only its own u = D // M fc6 units.

    With VGG-16's ``blocks [n, 512, 49]`` and D = 4096, u = 8: map k's 49 pooled inputs reach
    fc6 units ``8k ... 8k+7`` through a zero-mean random block
    (a map's spatial pattern drives its units, not its overall level), scaled by 1 / the map's
    SD over ``blocks`` (so that no few loud maps dominate every similarity). Each unit is then
    centred over ``blocks``: its sign is chosen so that its mean pre-activation is >= 0 and its
    bias is minus that mean. Centring removes the image-level activity that all maps share (in
    a plain random VGG-16 it makes every map's similarity pattern alike), and because every
    bias is <= 0 an ablated unit outputs ReLU(bias) = 0 exactly. fc7 is the identity with zero
    bias, so the embedding is the 4096 fc6 units after ReLU and removing map k zeroes exactly
    its own u units (fc6 units past ``u M``, if D is not a multiple of M, have zero weights
    and biases: they are 0 in every embedding).

    Args:
      blocks: ``[n, M, B]`` pooled trunk outputs of the images the head is calibrated on.
      rng: generator of the random blocks and fc8.
      num_classes: fc8 width.
      embed_dim: D, the fc6 / fc7 width (at least M).

    Returns:
      ``{'fc6': {'kernel' [M B, D], 'bias' [D]}, 'fc7': ..., 'fc8': ...}`` float32.
    """
    _, maps, block = blocks.shape
    units = embed_dim // maps
    if units < 1:
        raise ValueError(f"separable_head: {maps} maps need at least {maps} fc6 units, the "
                         f"head has {embed_dim}")
    w = rng.standard_normal((maps, block, units))  # [M, B, u]
    w -= w.mean(axis=1, keepdims=True)
    sd = blocks.std(axis=(0, 2))  # [M]; 0 for a map silent on every image
    w *= (1.0 / np.where(sd > 0, sd, 1.0) / np.sqrt(block))[:, None, None]
    mean_pre = np.einsum("nkb,kbu->ku", blocks.astype(np.float64), w) / blocks.shape[0]
    w *= np.where(mean_pre < 0, -1.0, 1.0)[:, None, :]
    bias = -np.abs(mean_pre)  # [M, u], <= 0
    fc6 = np.zeros((maps, block, maps, units), np.float32)
    fc6[np.arange(maps), :, np.arange(maps), :] = w
    kernel = np.zeros((maps * block, embed_dim), np.float32)
    kernel[:, : maps * units] = fc6.reshape(maps * block, maps * units)
    bias6 = np.zeros(embed_dim, np.float32)
    bias6[: maps * units] = bias.reshape(maps * units)
    return {
        "fc6": {"kernel": kernel, "bias": bias6},
        "fc7": {"kernel": np.eye(embed_dim, dtype=np.float32),
                "bias": np.zeros(embed_dim, np.float32)},
        "fc8": {"kernel": np.asarray(rng.standard_normal((embed_dim, num_classes)) / 64.0,
                                     np.float32),
                "bias": np.zeros(num_classes, np.float32)},
    }


def units_per_map(arch: Architecture) -> int:
    """u = D // M, the fc6 units each map feeds in the separable head (VGG-16: 8)."""
    embed = arch.param_shapes(DEMO_CLASSES)["head"]["fc6"]["kernel"].shape[1]
    return embed // arch.maps


def network_identity(cfg: "DemoConfig", images_digest: str) -> str:
    """The synthetic network's stand-in for a checkpoint sha256: recipe, seed, images and
    (for all but VGG-16, whose identity is that of before other architectures) architecture."""
    arch = "" if cfg.model == DEFAULT_MODEL else f" architecture {cfg.model}"
    return hashlib.sha256(
        f"ais_jax demo network recipe {DEMO_RECIPE_VERSION} seed {cfg.seed} size "
        f"{cfg.image_size} images {images_digest}{arch}".encode()).hexdigest()


def build_network(path: Path, cfg: "DemoConfig", image_paths: list[Path]) -> None:
    """Makes the synthetic network for these images and saves it with `save_params`.

    The trunk's activations go through the activation cache under the network's identity (so
    rebuilding the network does not rerun the trunk) and are then filed under the saved
    weights' tensor digest, so the Aim 1 run that follows reads them back.
    """
    arch = cfg.arch
    identity = network_identity(cfg, activations.images_digest(image_paths))
    params = arch.random_params(jax.random.key(cfg.seed), DEMO_CLASSES)
    trunk = params["trunk"]
    acts = activations.cached_activations(trunk, identity, image_paths,
                                          image_size=cfg.image_size,
                                          batch_size=cfg.batch_size, desc="demo trunk",
                                          arch=arch)
    if arch.head_family == "flatten_linear":
        blocks = np.asarray(activations.blocks_from_acts(acts.value, arch))  # [n, M, B]
        embed = arch.param_shapes(DEMO_CLASSES)["head"]["fc6"]["kernel"].shape[1]
        head = separable_head(blocks, np.random.default_rng(cfg.seed), embed_dim=embed)
        what = "map-separable head calibrated on the demo images"
    else:  # 'gap': the embedding (map k's mean is coordinate k) is separable as it is
        head = params["head"]
        what = "random head (the pooled embedding is map-separable as it is)"
    meta = {"model": f"demo_synthetic_{arch.name}",
            "source_file": "generated by ais_jax.study.aim1_demo", "source_sha256": identity,
            "num_classes": str(DEMO_CLASSES)}  # (this order: VGG-16's file is as before)
    if cfg.model == DEFAULT_MODEL:
        meta["description"] = ("SYNTHETIC: random He-scaled VGG-16 trunk, map-separable head "
                               "calibrated on the demo images (see ais_jax.study.aim1_demo)")
    else:
        meta["description"] = (f"SYNTHETIC: random {display_name(arch)} trunk, {what} (see "
                               "ais_jax.study.aim1_demo)")
        meta["architecture"] = arch.name
    written = save_params(path, {"trunk": trunk, "head": head}, meta)
    activations.store_activations(written["tensors_sha256"], image_paths, acts.value,
                                  image_size=cfg.image_size, arch=arch)


def demo_network(path: Path, cfg: "DemoConfig", image_paths: list[Path]) -> tuple[dict, dict]:
    """Loads the synthetic network from ``path``, (re)building it if absent or not this one."""
    identity = network_identity(cfg, activations.images_digest(image_paths))
    if path.exists():
        try:
            params, meta, arch = load_model(path)
            if meta.get("source_sha256") == identity and arch.name == cfg.model:
                return params, meta
        except ValueError:  # an older or damaged file: rebuild it
            pass
    build_network(path, cfg, image_paths)
    return load_model(path)[:2]


def plant_similarity(head: dict, blocks: np.ndarray, planted: np.ndarray, noise: float,
                     rng: np.random.Generator) -> np.ndarray:
    """The "human" matrix: corrcoef of embeddings with only the planted maps kept, plus noise.

    Args:
      head: head parameters.
      blocks: ``[n, M, B]`` the head's per-map inputs.
      planted: ``[|P|]`` map indices kept.
      noise: noise SD relative to the SD of the clean upper triangle.
      rng: noise generator.

    Returns:
      ``[n, n]`` float64, symmetric, unit diagonal.
    """
    keep = np.zeros(blocks.shape[1], np.float32)
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
      ais: ``[M]`` global AIS.
      planted: ``[|P|]`` planted map indices.

    Returns:
      dict: ``overlap`` (fraction of the top-|P| maps that are planted), ``chance_overlap``
      (its expectation under a random ranking, |P| / M), ``auc`` (probability that a planted
      map has higher AIS than an unplanted one, ties counting one half; Mann-Whitney U / (|P|
      (M - |P|))).
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


def _network_lines(cfg: DemoConfig, block: int) -> list[str]:
    arch = cfg.arch
    name = display_name(arch)
    if arch.head_family != "flatten_linear":
        return [f"* Network: {name} shapes ({arch.ablated_layer}, {arch.maps} maps); trunk and"
                " head = seeded random weights; the embedding is the global average pool, so"
                " ablating a map zeroes exactly its own embedding coordinate."]
    units = units_per_map(arch)
    trunk = "He-scaled VGG-16" if cfg.model == DEFAULT_MODEL else name
    return [
        f"* Network: {name} shapes; trunk = seeded random {trunk} weights; head built so"
        f" that each map's {block} pooled inputs feed only its own {units} fc6 units through"
        " a zero-mean random block scaled by 1/(the map's SD on these images), each unit"
        " centred over these images by a sign flip and a bias <= 0; fc7 = identity (ablating"
        f" a map zeroes exactly its own {units} embedding units)."]


def _describe(cfg: DemoConfig, live: int, block: int) -> str:
    return "\n".join([
        "# SYNTHETIC BENCHMARK — not the paper's data, not a trained network",
        "",
        "This is ais_jax's embedded planted-truth demo. Nothing was downloaded:",
        f"* {cfg.n_images} images ({cfg.image_size}×{cfg.image_size}) drawn by code (gradients,"
        f" stripes, shapes; seed {cfg.seed}); the paper's datasets have 120 real photos.",
        *_network_lines(cfg, block),
        f"* \"Human\" similarity = correlation of the embeddings with only a planted set P of"
        f" {cfg.planted} maps kept (drawn among the {live} maps that respond to these images),"
        f" plus symmetric Gaussian noise with SD = {cfg.noise:g} × SD of the clean similarities.",
        f"* Cross-validation: {cfg.folds} folds × {len(cfg.seeds)} seed(s) ="
        f" {cfg.folds * len(cfg.seeds)} folds (the paper: 5 × 8 = 40).",
        "* Everything after that is the same code path as real data"
        " (`python -m experiments.aim1`).",
    ])


def fold_recovery(records: list[dict], planted: np.ndarray, methods: tuple[str, ...],
                  maps: int) -> dict:
    """Per-fold recovery of P on the training images, greedy beside the soft mask.

    Greedy ranks maps by the fold's training AIS, the soft mask by its fitted ``m``; both are
    scored with `recovery` (AUC, top-|P| overlap), and each selected set (S*, the hard set
    ``{m > 0.5}``) by the fraction of it that is planted (``maps``: M). Means over folds.
    """
    is_planted = np.isin(np.arange(maps), planted)

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


def _methods_markdown(fold_rec: dict, method_rows: list[dict], score: str = "R²") -> list[str]:
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
            f"* {r['method']}: out-of-sample {score} {r['mean_test']:.3f}"
            f" (Full {r['mean_full']:.3f},"
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
        f"* Out-of-sample {SCORE_NAMES[cfg.score]}: Full {row['mean_full']:.3f}"
        f" vs Retained {row['mean_retained']:.3f}"
        f" (paired SE {row['se_paired']:.3f}); t = {row['t']:.2f}, p = {row['p']:.2g}"
        f" over {row['n_folds']} folds.",
        f"* Wall time {seconds:.0f} s (JAX backend: {jax.default_backend()})"
        + (f"; {row['folds_resumed']} finished folds were reused from an earlier run in this"
           " folder." if row["folds_resumed"] else "."),
        *extra,
        "",
    ])


def _config_record(cfg: DemoConfig) -> dict:
    """The config as demo.json records it (VGG-16's: as before other architectures existed)."""
    record = dataclasses.asdict(cfg)
    if cfg.model == DEFAULT_MODEL:
        del record["model"]
    return record


def run_demo(cfg: DemoConfig) -> dict:
    """Builds the synthetic benchmark under ``cfg.out`` and runs Aim 1 on it.

    Returns:
      dict with ``out``, ``recovery`` (global AIS on all images), ``row`` (the Aim 1 results
      row), ``set_sizes`` ``[folds]``, ``fold_overlap`` (mean fraction of S* that is planted),
      ``planted`` ``[|P|]``, ``seconds`` and ``text`` (the printed report).
    """
    start = time.perf_counter()
    arch = cfg.arch
    if not 1 <= cfg.planted < arch.maps:
        raise ValueError(f"planted must be in [1, {arch.maps}) ({arch.name} has {arch.maps} "
                         f"maps), got {cfg.planted}")
    out = Path(cfg.out)
    data = out / "demo_data"
    rng = np.random.default_rng(cfg.seed)
    paths = write_images(data / "images", cfg.n_images, cfg.image_size, rng)
    # 0.5 GB: kept in the cache, not in the results folder; reused when the demo is rerun.
    ckpt = storage.cache_dir() / "demo" / f"synthetic_{arch.name}.safetensors"
    params, meta = demo_network(ckpt, cfg, paths)
    acts = activations.cached_activations(params["trunk"], meta["tensors_sha256"], paths,
                                          image_size=cfg.image_size,
                                          batch_size=cfg.batch_size, desc="demo trunk",
                                          arch=arch)
    blocks = np.asarray(activations.blocks_from_acts(acts.value, arch))  # [n, M, B]
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
    preamble = _describe(cfg, live.size, blocks.shape[2])
    records = []
    result = aim1.run_aim1(aim1.Aim1Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=(("synthetic", str(ckpt)),),
        folds=cfg.folds, seeds=tuple(cfg.seeds), score=cfg.score, image_size=cfg.image_size,
        batch_size=cfg.batch_size, preamble=preamble, methods=tuple(cfg.methods),
        rsatoolbox=cfg.rsatoolbox, test_curves=True,  # the recovery figure plots them
        report=False),  # written below, once demo.json and summary.md are complete
        on_fold=records.append)
    row = result["rows"][0]
    rec = recovery(row["global_ais"], planted)
    is_planted = np.isin(np.arange(arch.maps), planted)
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
    fold_rec = fold_recovery(records, planted, methods, arch.maps)
    seconds = time.perf_counter() - start
    text = _recovery_markdown(rec, row, set_sizes, fold_overlap, cfg, seconds,
                              _methods_markdown(fold_rec, row.get("method_rows", []),
                                                SCORE_NAMES[cfg.score]))
    summary = (out / "summary.md").read_text()
    storage.write_text(out / "summary.md", summary.replace(preamble, f"{preamble}\n\n{text}", 1))
    storage.write_json(out / "demo.json", {
        "synthetic": True, "config": _config_record(cfg), "planted": planted.tolist(),
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
