r"""Aim 1 of Truong, Pesenti & Hasson (2024): do the top-AIS maps explain human similarity?

Real data (converted weights + the Peterson et al. 2018 set)::

    python -m experiments.aim1 --model=ecoset --data_dir=/data/peterson --out=results/aim1

Synthetic planted-truth demo (no downloads, a few minutes on a laptop CPU)::

    python -m experiments.aim1 --demo --out=results/demo

Writes summary.md (our numbers beside the paper's), figure1.png, results.csv/json,
ais_correlations.csv/json and one JSON per fold under --out; see `ais_jax.aim1`.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

from ais_jax import aim1, crossval, demo

FLAGS = flags.FLAGS
flags.DEFINE_bool("demo", False, "Run the synthetic planted-truth benchmark instead (no data).")
flags.DEFINE_enum("model", "ecoset", ["ecoset", "imagenet", "both"], "Which VGG-16 checkpoint.")
flags.DEFINE_string("weights", None, "A converted .safetensors file to use instead of the "
                    "cached weights of --model (not with --model=both).")
flags.DEFINE_string("data_dir", None, "Peterson root (<root>/<category>/images, "
                    ".../sim_judgements) or, with --matrix, a folder of images.")
flags.DEFINE_list("datasets", None, "Peterson categories to run (default: all six).")
flags.DEFINE_string("matrix", None, "Plain dataset: n x n .npy/.csv matrix of the images in "
                    "--data_dir, sorted by file name.")
flags.DEFINE_enum("kind", "similarity", ["similarity", "dissimilarity"],
                  "Whether --matrix holds similarities or dissimilarities (sign-flipped).")
flags.DEFINE_bool("symmetrize", False, "Average the human matrix with its transpose.")
flags.DEFINE_string("out", None, "Results directory (default: results/aim1, or results/demo).")
flags.DEFINE_integer("folds", 5, "Test chunks per shuffle.")
flags.DEFINE_list("seeds", [str(s) for s in crossval.LEGACY_SEEDS],
                  "Legacy np.random.seed values, one shuffle each.")
flags.DEFINE_enum("score", "r2", ["r2", "rho"], "Alignment score: R^2 (the paper's Aim 1) or rho.")
flags.DEFINE_integer("batch_size", 8, "Images per trunk call.")
flags.DEFINE_integer("chunk_maps", None, "Maps per ablation/greedy step (default: automatic).")
flags.DEFINE_integer("demo_images", 60, "--demo: number of generated images.")
flags.DEFINE_integer("demo_planted", 64, "--demo: size of the planted map set.")


def _config() -> aim1.Aim1Config:
    if FLAGS.data_dir is None:
        raise app.UsageError(
            "--data_dir is required (or run the synthetic demo with --demo). Get the Peterson "
            "et al. (2018) similarity data and lay it out as <root>/<category>/images/*.jpg and "
            "<root>/<category>/sim_judgements/*.mat, or pass a folder of images with --matrix.")
    if FLAGS.weights and FLAGS.model == "both":
        raise app.UsageError("--weights names one checkpoint; use it with --model=ecoset or "
                             "--model=imagenet")
    names = ("imagenet", "ecoset") if FLAGS.model == "both" else (FLAGS.model,)
    models = tuple((m, FLAGS.weights or m) for m in names)
    return aim1.Aim1Config(
        out=FLAGS.out or "results/aim1", data_dir=FLAGS.data_dir, models=models,
        datasets=tuple(FLAGS.datasets) if FLAGS.datasets else None, matrix=FLAGS.matrix,
        kind=FLAGS.kind, symmetrize=FLAGS.symmetrize, folds=FLAGS.folds,
        seeds=tuple(int(s) for s in FLAGS.seeds), score=FLAGS.score,
        batch_size=FLAGS.batch_size, chunk_maps=FLAGS.chunk_maps)


def main(argv):
    del argv
    try:
        if FLAGS.demo:
            result = demo.run_demo(demo.DemoConfig(
                out=FLAGS.out or "results/demo", n_images=FLAGS.demo_images,
                planted=FLAGS.demo_planted, batch_size=FLAGS.batch_size))
            print(result["text"])
        else:
            result = aim1.run_aim1(_config())
            print((result["out"] / "summary.md").read_text())
    except (FileNotFoundError, ValueError) as e:  # bad input: say what and how, exit != 0
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Results written to {result['out']}/ (summary.md, figure1.png, results.csv, ...)")
    logging.info("done")
    return 0


if __name__ == "__main__":
    app.run(main)
