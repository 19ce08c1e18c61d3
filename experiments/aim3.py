r"""Aim 3 of Truong, Pesenti & Hasson (2024): is what matters for comparison what draws the eye?

Saliency maps first (TranSalNet-Dense, one folder per Peterson category), then Aim 3::

    python -m experiments.saliency --data_dir=/data/peterson/animals --out=results/saliency/animals
    python -m experiments.aim3 --model=both --data_dir=/data/peterson \
        --saliency_dir=results/saliency --aim2_dir=results/aim2 --out=results/aim3

A plain dataset: ``--data_dir=my_images --matrix=sim.npy --kind=similarity
--saliency_dir=my_maps`` (``my_maps/<image stem>.npy`` or ``.png``, your own maps welcome).

Synthetic demo (planted regions, synthetic saliency maps; no downloads)::

    python -m experiments.aim3 --demo

Writes summary.md (Table 1 beside the paper's, the baselines), table1.csv/json,
metrics.csv/json, baseline_tests.csv/json, figure4_<model>.png and per-image CSVs under --out;
see `ais_jax.study.aim3`. The data, weights and model flags are shared with the other aims
(`experiments.cli`).
"""

from __future__ import annotations

from absl import app, flags

from ais_jax import preflight
from ais_jax.explain import baselines, compare
from ais_jax.study import aim3, aim3_demo
from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("saliency_dir", None, "Saliency maps: <dir>/<category>/<image stem>.npy|png "
                    "(Peterson), or the maps folder of a plain dataset.")
flags.DEFINE_string("aim2_dir", None, "An Aim 2 results folder whose heatmaps to reuse "
                    "(default: computed through the shared, cached pipeline).")
flags.DEFINE_list("percents", [str(p) for p in compare.PERCENTS], "Top-p% regions (percentages).")
flags.DEFINE_float("centre_sd", baselines.CENTRE_BIAS_SD,
                   "Centre-bias baseline SD, as a fraction of the shorter image side.")
flags.DEFINE_integer("mismatch_seed", 0, "Seed of the mismatched-pairs baseline.")
flags.DEFINE_integer("examples", 4, "Images per dataset in the Figure 4 grids.")
flags.DEFINE_bool("per_image_figures", False, "Also write one Figure 4 panel per image.")


def _percents() -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in FLAGS.percents)
    except ValueError as e:
        raise ValueError(f"--percents must be numbers, got {FLAGS.percents}") from e


def _extras() -> dict:
    return dict(percents=_percents(), centre_sd=FLAGS.centre_sd,
                mismatch_seed=FLAGS.mismatch_seed, examples=FLAGS.examples,
                per_image_figures=FLAGS.per_image_figures)


SETTINGS = ("percents", "centre_sd", "mismatch_seed", "examples", "per_image_figures")


def _run() -> int:
    cli.demo_flags(("out", "batch_size", "demo_images", "rsatoolbox", "chunk_maps", *SETTINGS),
                   (*SETTINGS, "saliency_dir", "aim2_dir"))
    if FLAGS.demo:  # the comparison settings, --rsatoolbox and --chunk_maps as given
        out = preflight.check_out_dir(FLAGS.out or "results/aim3_demo")
        result = aim3_demo.run_demo(aim3_demo.Aim3DemoConfig(
            out=str(out), batch_size=FLAGS.batch_size, chunk_maps=FLAGS.chunk_maps,
            rsatoolbox=FLAGS.rsatoolbox, report=FLAGS.report,
            **({"n_images": FLAGS.demo_images} if FLAGS.demo_images else {}), **_extras()))
    else:
        result = aim3.run_aim3(aim3.Aim3Config(
            **cli.study_kwargs("results/aim3"), saliency_dir=FLAGS.saliency_dir or "",
            aim2_dir=FLAGS.aim2_dir, **_extras()))
    print(result["text"])
    print(f"Results written to {result['out']}/ (summary.md, table1.csv, metrics.csv, "
          "baseline_tests.csv, figure4_<model>.png, ...)")
    return 0


main = cli.entry_point(_run)


if __name__ == "__main__":
    app.run(main)
