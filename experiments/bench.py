"""Benchmark of the ablation engine on this device; `ais_jax.study.bench` says what is timed.

    python -m experiments.bench                      # n = 120, writes bench.json
    python -m experiments.bench --n=24 --out=/tmp/b.json
    python -m experiments.bench --aim1_full=/tmp/r   # the full-scale Aim 1 rehearsal instead
    python -m experiments.bench --model=vgg16,alexnet   # per architecture, side by side
"""

from __future__ import annotations

from absl import app, flags

from ais_jax import preflight, storage
from ais_jax.study import bench, rehearsal

_D = bench.BenchConfig()
_N = flags.DEFINE_integer("n", _D.n, "images in the synthetic dataset (>= 15: the greedy "
                          "timing needs 3 test images)", lower_bound=15)
_OUT = flags.DEFINE_string("out", "bench.json", "where to write the JSON results")
_SEED = flags.DEFINE_integer("seed", _D.seed, "seed of the random weights and activations")
_REPEATS = flags.DEFINE_integer("repeats", _D.repeats, "timed runs after the warm-up (best is "
                                "reported)", lower_bound=1)
_TORCH_IMAGES = flags.DEFINE_integer("torch_images", _D.torch_images, "images timed in the "
                                     "PyTorch loop", lower_bound=1)
_TORCH_MAPS = flags.DEFINE_integer("torch_maps", _D.torch_maps, "maps per image timed in the "
                                   "PyTorch loop", lower_bound=1, upper_bound=512)
_VMAP_IMAGES = flags.DEFINE_integer("vmap_images", _D.vmap_images, "images timed on the vmap "
                                    "path", lower_bound=1)
_NAIVE_PREFIXES = flags.DEFINE_integer("naive_prefixes", _D.naive_prefixes, "prefixes timed on "
                                       "naive greedy", lower_bound=1, upper_bound=512)
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", _D.matmul_size, "size of the square matmul "
                                    "probe", lower_bound=1)
_SPARSITY = flags.DEFINE_float("sparsity", _D.sparsity, "fraction of zero activations "
                               "(conv5_3-like)", lower_bound=0.0, upper_bound=1.0)
_DEAD_MAPS = flags.DEFINE_integer("dead_maps", _D.dead_maps, "maps set to zero in every image "
                                  "(skipped)", lower_bound=0, upper_bound=511)
_SKIP_TORCH = flags.DEFINE_bool("skip_torch", _D.skip_torch, "skip the PyTorch loop baseline")
_FC6_ACTIVE = flags.DEFINE_float("fc6_active", _D.fc6_active, "fraction of fc6 units active in "
                                 "the trained-like head (an fc6 bias shift; an assumed level)",
                                 lower_bound=0.001, upper_bound=1.0)
_MODEL = flags.DEFINE_list("model", None, "instead of the VGG-16 paths table: one row per "
                           "registered architecture (ablations/s, one greedy curve, the FLOP "
                           "bound of its head), side by side, e.g. --model=vgg16,alexnet")
_AIM1_FULL = flags.DEFINE_string("aim1_full", None, "instead of the benchmark, run the "
                                 "full-scale Aim 1 rehearsal (experiments.aim1_full) in this "
                                 "folder; the same folder again resumes")
_AIM1_FULL_FC6 = flags.DEFINE_float("aim1_full_fc6_active", None, "with --aim1_full: the "
                                    "fraction of fc6 units the rehearsal's random networks "
                                    "have active (default: zero biases, about half)",
                                    lower_bound=0.001, upper_bound=1.0)


def main(argv):
    preflight.refuse_leftovers(argv)
    if _AIM1_FULL.value is not None:  # the rehearsal checks its own folder first
        return rehearsal.cli_main(_AIM1_FULL.value, fc6_active=_AIM1_FULL_FC6.value)
    preflight.check_out_file(_OUT.value)  # before the benchmark, not after it
    if _MODEL.value is not None:
        bench.check_models(tuple(_MODEL.value))  # unknown or repeated names: before any work
        res = bench.run_models(bench.BenchConfig(
            n=_N.value, seed=_SEED.value, repeats=_REPEATS.value, sparsity=_SPARSITY.value,
            matmul_size=_MATMUL_SIZE.value, models=tuple(_MODEL.value)))
        print(bench.format_models_table(res))
        storage.write_json(_OUT.value, res)
        print(f"wrote {_OUT.value}")
        return 0
    res = bench.run(bench.BenchConfig(
        n=_N.value, seed=_SEED.value, repeats=_REPEATS.value, torch_images=_TORCH_IMAGES.value,
        torch_maps=_TORCH_MAPS.value, vmap_images=_VMAP_IMAGES.value,
        naive_prefixes=_NAIVE_PREFIXES.value, matmul_size=_MATMUL_SIZE.value,
        sparsity=_SPARSITY.value, dead_maps=_DEAD_MAPS.value, skip_torch=_SKIP_TORCH.value,
        fc6_active=_FC6_ACTIVE.value))
    print(bench.format_table(res))
    storage.write_json(_OUT.value, res)
    print(f"wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(preflight.run_cli(main))
