"""Benchmark of the ablation engine on the current device (issues #3, #14).

    python -m experiments.bench                      # n = 120, writes bench.json
    python -m experiments.bench --n=24 --out=/tmp/b.json
    python -m experiments.bench --aim1_full=/tmp/r   # the full-scale Aim 1 rehearsal instead
    python -m experiments.bench --model=vgg16,alexnet,resnet50   # one row per architecture

Random VGG-16 head weights (`random_params`) and random sparse non-negative conv5_3-shaped
activations (no trunk is run), with two heads side by side:

* ``random``: the He-scaled head with zero biases (about half of fc6 active);
* ``trained-like``: the same head with one constant subtracted from every fc6 bias so that
  ``--fc6_active`` (default 25 %) of fc6 units are active on these activations. A trained
  VGG-16's fc6 is sparser than a random one's; how sparse on a given dataset decides what the
  active-set fc7 (`ais_jax.engine.active_set`) saves. The level is an assumption, stated in the
  output.

For each head, in one run:

(a) a PyTorch loop shaped like the authors' code (per image, per map: clone, zero the channel,
    batch-1 head forward), when torch is installed; timed on a subset, extrapolated, labelled;
(b) the vmap path (`ablation_embeddings(method='vmap')`), random head only, timed on a subset
    of images and extrapolated (its cost is linear in the images);
(c) the fast similarity kernel (`ablation_similarities`) with the plain fc7 product;
(c*) the same kernel with the exact active-set fc7;
(d) the device's float32 (HIGHEST) matmul rate and the FLOP bound it implies for the fast path
    with a dense fc7;

and one greedy curve (512 prefixes) with the plain and the active-set fc7 (and, for the random
head, the naive reference timed on a subset of prefixes and extrapolated). The first call
(compilation included) is reported beside the best of ``--repeats`` later calls.

With ``--model=ARCH[,ARCH...]`` (`run_models`) the run measures, instead, each registered
architecture side by side on the same device: its random head (``random_params``) on random
sparse maps of its own grid and M, the ablation similarities (ablations/s) and one greedy curve
(M prefixes), each beside the FLOP bound of its head family (`model_flops`).
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ais_jax.engine import ablation, selection
from ais_jax.engine.throughput import best_time, matmul_rate
from ais_jax.models import registry, vgg16
from ais_jax.models.registry import Architecture


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What `run` measures (the ``python -m experiments.bench`` flags of the same names)."""

    n: int = 120  # images in the synthetic dataset (>= 15: the greedy timing needs 3 test images)
    seed: int = 0  # of the random weights and activations
    repeats: int = 2  # timed runs after the warm-up (best is reported)
    torch_images: int = 1  # images timed in the PyTorch loop
    torch_maps: int = 64  # maps per image timed in the PyTorch loop
    vmap_images: int = 8  # images timed on the vmap path
    naive_prefixes: int = 8  # prefixes timed on naive greedy
    matmul_size: int = 4096  # side of the square matmul probe
    sparsity: float = 0.8  # fraction of zero activations (conv5_3-like)
    dead_maps: int = 0  # maps set to zero in every image (skipped)
    skip_torch: bool = False  # skip the PyTorch loop baseline
    fc6_active: float = 0.25  # fc6 units active in the trained-like head (an assumed level)
    models: tuple[str, ...] = ()  # architectures for `run_models` (registry names)
    image_size: int = 224  # input side whose map grid the per-model rows use


def synthetic_inputs(n: int, seed: int, sparsity: float, dead_maps: int = 0, hw: int = 14):
    """Random head params, fc6 blocks ``[n, 512, 49]`` and activations ``[n, hw, hw, 512]``.

    The first ``dead_maps`` maps are zero in every image (as some conv5_3 maps are on a
    real dataset); the ablation kernels skip them exactly.
    """
    params = vgg16.random_params(jax.random.key(seed))["head"]
    rng = np.random.default_rng(seed)
    threshold = float(np.quantile(rng.normal(size=100_000), sparsity))
    acts = np.maximum(rng.normal(size=(n, hw, hw, vgg16.NUM_MAPS)) - threshold, 0)
    acts[..., :dead_maps] = 0
    acts = acts.astype(np.float32)
    blocks = jax.block_until_ready(vgg16.pool_blocks(jnp.asarray(acts)))
    return params, blocks, acts


def fast_path_flops(n: int, maps: int, block: int, d6: int, d: int) -> float:
    """FLOPs of the fast path: unablated fc6 + fc7 once, then per (image, map) the B-wide
    fc6 correction and one fc7 row (SPEC §2, §9)."""
    base = n * (2 * maps * block * d6 + 2 * d6 * d)
    return base + n * maps * (2 * block * d6 + 2 * d6 * d)


def torch_loop(params: dict, acts: np.ndarray, images: int, maps: int) -> dict:
    """The authors' style: per image, per map, clone, zero, batch-1 head forward."""
    import torch  # optional dependency

    def linear(layer):
        w = np.asarray(layer["kernel"])
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(np.array(layer["bias"])))
        return lin

    head = torch.nn.Sequential(
        torch.nn.MaxPool2d(2, 2),
        torch.nn.AdaptiveAvgPool2d((7, 7)),
        torch.nn.Flatten(),
        linear(params["fc6"]), torch.nn.ReLU(), torch.nn.Dropout(),
        linear(params["fc7"]), torch.nn.ReLU(), torch.nn.Dropout(),
    ).eval()  # fmt: skip
    feats = torch.from_numpy(np.ascontiguousarray(acts[:images].transpose(0, 3, 1, 2)))
    with torch.no_grad():
        head(feats[:1].clone())  # warm-up
        t0 = time.perf_counter()
        for i in range(images):
            for k in range(maps):
                a = feats[i].clone()
                a[k] = 0
                head(a[None])
        seconds = time.perf_counter() - t0
    return {"ablations": images * maps, "seconds": seconds, "threads": torch.get_num_threads()}


def trained_like(params: dict, blocks: jax.Array, fc6_active: float) -> dict:
    """``params`` with one constant subtracted from every fc6 bias so that ``fc6_active`` of
    the fc6 units are active (``fc6_pre > 0``) on ``blocks``."""
    return ablation.shift_fc6_biases(params, blocks, fc6_active)[0]


def head_rows(params: dict, blocks: jax.Array, acts: np.ndarray, n: int, *,
              with_vmap: bool, flops: float, config: BenchConfig) -> dict:
    """The rows (a), (b), (c), (c*) of one head; ablations/s, seconds, GFLOP/s."""
    dims = ablation.head_dims(params, blocks)
    total = n * dims.maps
    rows = {}
    if not config.skip_torch:
        try:
            t = torch_loop(params, acts, config.torch_images, config.torch_maps)
        except ImportError:
            rows["(a) torch loop"] = {"ablations_per_s": float("nan"), "seconds": float("nan"),
                                      "note": "torch not installed"}
        else:
            per_s = t["ablations"] / t["seconds"]
            rows["(a) torch loop"] = {
                "ablations_per_s": per_s, "seconds": total / per_s,
                "note": f"extrapolated from {t['ablations']} ablations, {t['threads']} threads",
            }  # fmt: skip
    if with_vmap:
        k = min(config.vmap_images, n)
        first, best = best_time(
            lambda: ablation.ablation_embeddings(params, blocks[:k], method="vmap"), 1)
        per_s = k * dims.maps / best
        rows["(b) vmap path"] = {
            "ablations_per_s": per_s, "seconds": total / per_s, "first_call_s": first,
            "note": f"extrapolated from {k} images x {dims.maps} maps",
        }  # fmt: skip
    for label, path, note in (("(c) fast, plain fc7", "plain", "dense fc7 product"),
                              ("(c*) fast, active-set fc7", "active",
                               "fc7 over the active fc6 units only (exact)")):
        first, best = best_time(
            lambda path=path: ablation.ablation_similarities(params, blocks, fc7_path=path),
            config.repeats)
        rows[label] = {
            "ablations_per_s": total / best, "seconds": best, "first_call_s": first,
            "gflops": flops / best / 1e9,
            "note": f"similarity kernel, {note}; GFLOP/s counts the dense fast path's FLOPs",
        }  # fmt: skip
    return rows


def run(config: BenchConfig) -> dict:
    """All measurements; returns the JSON-able results (`format_table` prints them)."""
    n = config.n
    params, blocks, acts = synthetic_inputs(n, config.seed, config.sparsity, config.dead_maps)
    dims = ablation.head_dims(params, blocks)
    res = {
        "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
        "devices": jax.device_count(), "n": n, "maps": dims.maps,
        "zero_pairs_fraction": float(np.mean(np.all(np.asarray(blocks) == 0, axis=-1))),
        "dead_maps": config.dead_maps,
        "load_average": list(os.getloadavg()),
    }  # fmt: skip
    rate = matmul_rate(config.matmul_size)
    flops = fast_path_flops(n, dims.maps, dims.block, dims.fc6, dims.embed)
    res["fast_flops"] = flops
    heads = {"random": params, "trained-like": trained_like(params, blocks, config.fc6_active)}
    res["heads"] = {}
    for name, head in heads.items():
        res["heads"][name] = {
            "fc6_active_fraction": ablation.fc6_active_fraction(head, blocks),
            "rows": head_rows(head, blocks, acts, n, with_vmap=name == "random", flops=flops,
                              config=config),
            "greedy": greedy_timings(head, blocks, n, naive=name == "random", config=config),
        }
    res["heads"]["trained-like"]["fc6_active_requested"] = config.fc6_active
    # The probe is repeated at the end: other jobs on the machine make any single probe low.
    rate_end = matmul_rate(config.matmul_size)
    res["matmul_gflops_start_end"] = [rate / 1e9, rate_end / 1e9]
    rate = max(rate, rate_end)
    res["matmul_gflops"] = rate / 1e9
    res["fast_path_bound_s"] = flops / rate
    res["load_average_end"] = list(os.getloadavg())
    for head in res["heads"].values():
        for row in head["rows"].values():
            if "gflops" in row:
                row["pct_of_bound"] = 100 * row["gflops"] * 1e9 / rate
            row["seconds_per_120"] = 120 * dims.maps / row["ablations_per_s"]
    return res


def greedy_timings(params: dict, blocks: jax.Array, n: int, *, naive: bool,
                   config: BenchConfig) -> dict:
    """One greedy curve (train 80% / test 20%): plain vs active-set fc7 (and naive)."""
    rng = np.random.default_rng(config.seed)
    human = rng.normal(size=(n, n))
    human = human + human.T
    perm = rng.permutation(n)
    test, train = np.sort(perm[: n // 5]), np.sort(perm[n // 5 :])
    order = rng.permutation(blocks.shape[1])
    out = {}
    for path in ("plain", "active"):
        first, best = best_time(lambda path=path: selection.greedy_curves(
            params, blocks, order, human, train=train, test=test, fc7_path=path)[0], 1)
        out[f"{path}_s"], out[f"{path}_first_call_s"] = best, first
    out["speedup_active"] = out["plain_s"] / out["active_s"]
    if naive:
        p = config.naive_prefixes
        sizes = jnp.asarray(np.linspace(1, blocks.shape[1], p).round().astype(np.int32))
        h = jnp.asarray(human, jnp.float32)
        args = (params, blocks, jnp.asarray(order), sizes, jnp.asarray(train), jnp.asarray(test),
                h[np.ix_(train, train)], h[np.ix_(test, test)])  # fmt: skip
        _, best = best_time(lambda: selection.naive_prefix_scores(*args, chunk=1, score="r2"),
                            1)
        out["naive_s"] = best * blocks.shape[1] / p
        out["naive_note"] = f"extrapolated from {p} of {blocks.shape[1]} prefixes"
    return out


def format_table(res: dict) -> str:
    """The printed summary."""
    lines = [
        f"device: {res['device']} ({res['platform']}, {res['devices']} device(s)); n = {res['n']}; "
        f"load average {res['load_average'][0]:.2f} -> {res['load_average_end'][0]:.2f}",
        f"matmul float32 (HIGHEST): {res['matmul_gflops']:.1f} GFLOP/s -> dense fast-path bound "
        f"{res['fast_path_bound_s']:.2f} s ({res['fast_flops'] / 1e12:.3f} TFLOP)",
    ]
    for name, head in res["heads"].items():
        rows = head["rows"]
        base = rows.get("(a) torch loop", {}).get("ablations_per_s")
        level = f"{head['fc6_active_fraction']:.1%} of fc6 active"
        if "fc6_active_requested" in head:
            level += " (fc6 biases shifted for it: an assumed trained-like level)"
        lines += ["", f"head: {name}, {level}",
                  f"{'path':<28}{'ablations/s':>13}{'s/120 img':>11}{'GFLOP/s':>9}"
                  f"{'% bound':>9}{'speed-up':>10}{'1st call s':>11}  note"]
        for label, row in rows.items():
            speed = f"{row['ablations_per_s'] / base:.1f}x" if base and base == base else "-"
            gf = f"{row['gflops']:.1f}" if "gflops" in row else "-"
            pct = f"{row['pct_of_bound']:.0f}%" if "pct_of_bound" in row else "-"
            comp = f"{row['first_call_s']:.1f}" if "first_call_s" in row else "-"
            lines.append(f"{label:<28}{row['ablations_per_s']:>13.1f}"
                         f"{row['seconds_per_120']:>11.2f}{gf:>9}{pct:>9}{speed:>10}{comp:>11}"
                         f"  {row['note']}")
        g = head["greedy"]
        text = (f"greedy curve ({res['maps']} prefixes): plain fc7 {g['plain_s']:.2f} s, "
                f"active-set fc7 {g['active_s']:.2f} s ({g['speedup_active']:.2f}x)")
        if "naive_s" in g:
            text += f", naive {g['naive_s']:.1f} s ({g['naive_note']})"
        lines.append(text)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# One row per architecture (--model=).


def check_models(names: tuple[str, ...]) -> tuple[Architecture, ...]:
    """The registered architectures ``names``.

    Raises:
      ValueError: none given, an unknown name (listing the known ones) or a repeated one.
    """
    if not names:
        raise ValueError(f"--model: give one or more of {', '.join(registry.ARCHITECTURES)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--model names {', '.join(repeated)} more than once")
    return tuple(registry.architecture(n) for n in names)


def model_flops(arch: Architecture, head: dict, n: int, maps: int, block: int) -> tuple[float, str]:
    """The FLOP count the fast path of ``arch``'s head family cannot beat, and what it counts.

    * ``'flatten_linear'``: `fast_path_flops` (unablated fc6 + fc7 once, then per (image, map)
      the B-wide fc6 correction and one fc7 row), with the head's own widths.
    * ``'gap'``: the closed forms' O(M n²): the n x n Gram of the M-wide embedding once
      (2 n² M) and per map a rank-one update of the n x n similarity for the global ablation
      and one row per image for the per-image ablations (about 4 n² each): 6 M n².
    """
    if arch.head_family == "flatten_linear":
        d6, d = head["fc6"]["kernel"].shape[1], head["fc7"]["kernel"].shape[1]
        return (fast_path_flops(n, maps, block, d6, d),
                f"fc6 identity + fc7: n M (2 B D6 + 2 D6 D), D6 = {d6}, D = {d}")
    return 6.0 * maps * n * n, "closed forms: 6 M n^2 (O(M n^2))"


def model_inputs(arch: Architecture, n: int, seed: int, sparsity: float,
                 image_size: int) -> tuple[dict, jax.Array, tuple[int, int]]:
    """``arch``'s random head, blocks ``[n, M, B]`` of random sparse maps at its grid for a
    square ``image_size`` input, and that grid ``(h, w)``."""
    params = arch.random_params(jax.random.key(seed), 1000)
    images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    _, h, w, maps = jax.eval_shape(arch.trunk_apply, params["trunk"], images).shape
    rng = np.random.default_rng(seed)
    threshold = float(np.quantile(rng.normal(size=100_000), sparsity))
    acts = np.maximum(rng.normal(size=(n, h, w, maps)) - threshold, 0).astype(np.float32)
    blocks = jax.block_until_ready(jax.jit(arch.pool)(jnp.asarray(acts)))
    return params["head"], blocks, (h, w)


def model_row(arch: Architecture, config: BenchConfig) -> dict:
    """Ablations/s of the similarity kernel and one greedy curve of one architecture."""
    n = config.n
    head, blocks, grid = model_inputs(arch, n, config.seed, config.sparsity, config.image_size)
    _, maps, block = blocks.shape
    first, best = best_time(lambda: ablation.ablation_similarities(head, blocks),
                            config.repeats)
    rng = np.random.default_rng(config.seed)
    human = rng.normal(size=(n, n))
    human = human + human.T
    perm = rng.permutation(n)
    test, train = np.sort(perm[: n // 5]), np.sort(perm[n // 5 :])
    order = rng.permutation(maps)
    g_first, g_best = best_time(lambda: selection.greedy_curves(
        head, blocks, order, human, train=train, test=test)[0], 1)
    flops, flops_note = model_flops(arch, head, n, maps, block)
    return {
        "architecture": arch.name, "ablated_layer": arch.ablated_layer,
        "head_family": arch.head_family, "maps": maps, "grid": list(grid), "block": block,
        "ablations_per_s": n * maps / best, "similarities_s": best, "first_call_s": first,
        "greedy_s": g_best, "greedy_first_call_s": g_first, "flops": flops,
        "flops_note": flops_note,
    }  # fmt: skip


def run_models(config: BenchConfig) -> dict:
    """`model_row` of every architecture in ``config.models``, with the device's matmul rate
    (probed before and after, the larger kept) and each row's FLOP bound and share of it."""
    archs = check_models(tuple(config.models))
    res = {"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
           "devices": jax.device_count(), "n": config.n, "image_size": config.image_size,
           "sparsity": config.sparsity, "load_average": list(os.getloadavg())}
    rate = matmul_rate(config.matmul_size)
    res["models"] = {a.name: model_row(a, config) for a in archs}
    rate = max(rate, matmul_rate(config.matmul_size))
    res["matmul_gflops"] = rate / 1e9
    res["load_average_end"] = list(os.getloadavg())
    for row in res["models"].values():
        row["bound_s"] = row["flops"] / rate
        row["pct_of_bound"] = 100 * row["bound_s"] / row["similarities_s"]
    return res


def format_models_table(res: dict) -> str:
    """The printed summary of `run_models`."""
    lines = [
        f"device: {res['device']} ({res['platform']}, {res['devices']} device(s)); n = {res['n']}; "
        f"{res['image_size']}x{res['image_size']} inputs; load average "
        f"{res['load_average'][0]:.2f} -> {res['load_average_end'][0]:.2f}",
        f"matmul float32 (HIGHEST): {res['matmul_gflops']:.1f} GFLOP/s",
        "",
        f"{'model':<10}{'layer':<9}{'head':<15}{'M':>5}{'grid':>7}{'ablations/s':>13}"
        f"{'sims s':>9}{'bound s':>9}{'% bound':>9}{'greedy s':>10}  FLOP bound",
    ]
    for name, r in res["models"].items():
        grid = f"{r['grid'][0]}x{r['grid'][1]}"
        lines.append(f"{name:<10}{r['ablated_layer']:<9}{r['head_family']:<15}{r['maps']:>5}"
                     f"{grid:>7}{r['ablations_per_s']:>13.1f}{r['similarities_s']:>9.2f}"
                     f"{r['bound_s']:>9.3f}{r['pct_of_bound']:>8.0f}%{r['greedy_s']:>10.2f}"
                     f"  {r['flops'] / 1e9:.1f} GFLOP: {r['flops_note']}")
    return "\n".join(lines)
