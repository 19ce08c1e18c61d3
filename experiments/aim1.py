r"""Aim 1 of Truong, Pesenti & Hasson (2024): do the top-AIS maps explain human similarity?

Real data (converted weights + the Peterson et al. 2018 set)::

    python -m experiments.aim1 --model=ecoset --data_dir=/data/peterson --out=results/aim1

Synthetic planted-truth demo (no downloads, a few minutes on a laptop CPU), on VGG-16 or any
registered architecture (``--demo_model=alexnet``, ...)::

    python -m experiments.aim1 --demo --out=results/demo

Several models side by side (each converted first with ``python -m weights_convert``)::

    python -m experiments.aim1 --model=vgg16_ecoset,alexnet_ecoset --data_dir=... --out=...

Beyond the paper, learned soft masks and feature reweighting on the same folds (rows in
results.csv/json, bars in figure1.png; the demo runs all three)::

    python -m experiments.aim1 --methods=greedy,softmask,reweight --data_dir=... --out=...

Writes summary.md (our numbers beside the paper's), figure1.png, results.csv/json,
ais_correlations.csv/json and one JSON per fold under --out; see `ais_jax.study.aim1`. The data,
weights and model flags are shared with the other aims (`experiments.cli`).
"""

from __future__ import annotations

from absl import app, flags, logging

from ais_jax import preflight
from ais_jax.engine import crossval
from ais_jax.fitting import compare
from ais_jax.models import registry
from ais_jax.study import aim1, aim1_demo
from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_integer("folds", 5, "Test chunks per shuffle.")
flags.DEFINE_list("seeds", [str(s) for s in crossval.LEGACY_SEEDS],
                  "Legacy np.random.seed values, one shuffle each.")
flags.DEFINE_enum("score", "r2", ["r2", "rho"], "Alignment score: R^2 (the paper's Aim 1) or rho.")
flags.DEFINE_integer("demo_planted", 64, "--demo: size of the planted map set.")
flags.DEFINE_string("demo_model", aim1_demo.DEFAULT_MODEL, "--demo: the architecture of the "
                    f"synthetic network ({', '.join(registry.ARCHITECTURES)}).")
flags.DEFINE_list("methods", ["greedy"], "Selection methods on the same folds: greedy (the "
                  "paper's, always included), softmask, reweight. --demo default: all three.")

DEMO_IMAGES = 60
flags.DEFINE_bool("test_curves", False, "Also compute every fold's whole test curve (plots); "
                  "off: test scores at S* and at all maps only (same numbers).")
OWN = ("folds", "seeds", "score", "demo_planted", "demo_model", "methods")


def _present(name: str, default):
    """A flag's value if the user gave it, else the demo's own ``default``."""
    return FLAGS[name].value if FLAGS[name].present else default


def _config() -> aim1.Aim1Config:
    return aim1.Aim1Config(
        **cli.study_kwargs("results/aim1"), folds=FLAGS.folds,
        seeds=preflight.int_list(FLAGS.seeds, "--seeds"), score=FLAGS.score,
        methods=tuple(FLAGS.methods), test_curves=FLAGS.test_curves)


def _run() -> int:
    # The demo always computes test curves (its recovery figure plots them).
    cli.demo_flags(("out", "batch_size", "demo_images", "rsatoolbox", *OWN), (*OWN, "test_curves"))
    if FLAGS.demo:  # --score, --rsatoolbox, --folds, --seeds, --methods as given
        preflight.check_positive(FLAGS.batch_size, "--batch_size")
        n_images, demo = FLAGS.demo_images or DEMO_IMAGES, aim1_demo.DemoConfig
        folds = _present("folds", demo.folds)
        preflight.check_folds(n_images, folds)
        methods = compare.check_methods(tuple(_present("methods", compare.METHODS)))
        out = preflight.check_out_dir(FLAGS.out or "results/demo")
        result = aim1_demo.run_demo(aim1_demo.DemoConfig(
            out=str(out), n_images=n_images, planted=FLAGS.demo_planted,
            batch_size=FLAGS.batch_size, methods=methods, folds=folds,
            seeds=preflight.int_list(_present("seeds", demo.seeds), "--seeds"),
            score=FLAGS.score, rsatoolbox=FLAGS.rsatoolbox,
            model=registry.architecture(FLAGS.demo_model).name, report=FLAGS.report))
        print(result["text"])
    else:
        result = aim1.run_aim1(_config())
        print((result["out"] / "summary.md").read_text())
    print(f"Results written to {result['out']}/ (summary.md, figure1.png, results.csv, ...)")
    logging.info("done")
    return 0


main = cli.entry_point(_run)


if __name__ == "__main__":
    app.run(main)
