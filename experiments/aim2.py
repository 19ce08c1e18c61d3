r"""Aim 2 of Truong, Pesenti & Hasson (2024): per-image AIS heatmaps, Figures 2 and 3.

Real data (converted weights + the Peterson et al. 2018 set)::

    python -m experiments.aim2 --model=both --data_dir=/data/peterson --out=results/aim2

Synthetic planted-region demo (no downloads, a few minutes on a laptop CPU)::

    python -m experiments.aim2 --demo

Writes per model and dataset per_image_ais.npy, heatmaps_grid.npy + image_ids.json, overlays/,
and the statistics tables, figure2_<dataset>.png, figure3.png, summary.md, run.json under
--out; see `ais_jax.study.aim2`. Reuses Aim 1's cache of trunk activations and ablations. The
data, weights and model flags are shared with the other aims (`experiments.cli`).
"""

from __future__ import annotations

from absl import app, flags

from ais_jax import preflight
from ais_jax.study import aim2, aim2_demo
from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("overlays", "all", "Overlay PNGs per model and dataset: 'all', or the "
                    "first N images (0: none).")
flags.DEFINE_enum("full_maps", "examples", list(aim2.FULL_MAPS),
                  "Original-size heatmaps to save as .npz: none, the Figure 2 examples, or all.")
flags.DEFINE_enum("full_dtype", "float32", ["float32", "float16"], "dtype of those .npz maps.")
flags.DEFINE_integer("examples", 3, "Images per dataset in Figure 2 (3: highest, median and "
                     "lowest Match).")
flags.DEFINE_string("colormap", "jet", "Overlay colormap (matplotlib name).")
flags.DEFINE_float("image_weight", 0.5, "Weight of the image in the overlays, in [0, 1].")


def _overlays() -> int | None:
    if FLAGS.overlays == "all":
        return None
    try:
        return int(FLAGS.overlays)
    except ValueError:
        raise ValueError(f"--overlays must be 'all' or a number, got {FLAGS.overlays!r}") from None


def _config() -> aim2.Aim2Config:
    return aim2.Aim2Config(
        **cli.study_kwargs("results/aim2"), overlays=_overlays(), full_maps=FLAGS.full_maps,
        full_dtype=FLAGS.full_dtype, examples=FLAGS.examples, colormap=FLAGS.colormap,
        image_weight=FLAGS.image_weight)


OWN = ("overlays", "full_maps", "full_dtype", "examples", "colormap", "image_weight")


def _run() -> int:
    cli.demo_flags(("out", "batch_size", "demo_images", "rsatoolbox", "chunk_maps", *OWN), OWN)
    if FLAGS.demo:  # Aim 2's own flags, --rsatoolbox and --chunk_maps as given
        kwargs = {"n_images": FLAGS.demo_images} if FLAGS.demo_images else {}
        preflight.check_positive(FLAGS.batch_size, "--batch_size")
        out = preflight.check_out_dir(FLAGS.out or "results/demo_aim2")
        demo = aim2_demo.DemoConfig(
            out=str(out), batch_size=FLAGS.batch_size, chunk_maps=FLAGS.chunk_maps,
            rsatoolbox=FLAGS.rsatoolbox, report=FLAGS.report, **kwargs, settings=dict(
                overlays=_overlays(), full_maps=FLAGS.full_maps, full_dtype=FLAGS.full_dtype,
                examples=FLAGS.examples, colormap=FLAGS.colormap,
                image_weight=FLAGS.image_weight))
        result = aim2_demo.run_demo(demo)
        print(result["text"])
    else:
        result = aim2.run_aim2(_config())
        print(result["summary"])
    print(f"Results written to {result['out']}/ (summary.md, figure2_*.png, figure3.png, ...)")
    return 0


main = cli.entry_point(_run)


if __name__ == "__main__":
    app.run(main)
