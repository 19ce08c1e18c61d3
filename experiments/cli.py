"""Command-line flags shared by every experiments/ entry point over models x datasets.

Importing this module defines the shared flags once (absl flags are process-global), so
experiments.aim1, .aim2 and .aim3 accept the same data, weights and model flags and build the
shared part of their config with `study_kwargs`. Each entry point defines only its own extras.
"""

from __future__ import annotations

from typing import Callable, Sequence

from absl import app, flags

from ais_jax import preflight
from ais_jax.study import config
from ais_jax.weights import MODEL_ARCHITECTURES

FLAGS = flags.FLAGS

flags.DEFINE_bool("demo", False, "Run the synthetic planted-truth benchmark instead (no data).")
flags.DEFINE_list("model", ["ecoset"], "Comma-separated converted models, run side by side "
                  f"(one of {', '.join(MODEL_ARCHITECTURES)}; 'both' = imagenet,ecoset, "
                  "VGG-16).")
flags.DEFINE_list("weights", None, "Converted .safetensors files to use instead of the cached "
                  "weights of --model, one per --model name (which labels it), in order.")
flags.DEFINE_string("data_dir", None, "Peterson root (<root>/<category>/images, "
                    ".../sim_judgements) or, with --matrix, a folder of images.")
flags.DEFINE_string("data", None, "tfds:NAME/CONFIG[:split]: a TFDS dataset (the 'tfds' extra; "
                    "--data_dir is then TFDS's data dir), e.g. tfds:peterson_similarity/animals. "
                    "See docs/tfds.md.")
flags.DEFINE_list("datasets", None, "Peterson categories to run (default: all six).")
flags.DEFINE_string("matrix", None, "Plain dataset: n x n .npy/.csv/.mat matrix of the images "
                    "in --data_dir, sorted by file name, or an rsatoolbox RDMs .hdf5 "
                    "(<file>:<descriptor>=<value> picks one RDM of several).")
flags.DEFINE_enum("kind", None, ["similarity", "dissimilarity"],
                  "Required with --matrix: whether it holds similarities or dissimilarities "
                  "(sign-flipped). Never guessed: a wrong kind flips the sign of every score. "
                  "Not needed for an rsatoolbox file (it says it holds dissimilarities).")
flags.DEFINE_bool("rsatoolbox", False, "Also write each model and dataset's human, model and "
                  "M ablated-model RDMs as rsatoolbox HDF5 files (needs the 'rsa' extra).")
flags.DEFINE_string("name", None, "Plain dataset: its name (default: the folder's name).")
flags.DEFINE_bool("symmetrize", False, "Average the human matrix with its transpose.")
flags.DEFINE_string("out", None, "Results directory (default: results/<aim>, or the demo's).")
flags.DEFINE_integer("batch_size", 8, "Images per trunk call.")
flags.DEFINE_integer("chunk_maps", None, "Maps per ablation/greedy step (default: automatic).")
flags.DEFINE_bool("report", True, "Write <out>/report.html (tables, figures, every image; "
                  "opens from the file system) at the end; --report=false skips it.")
flags.DEFINE_integer("demo_images", None, "--demo: generated images (default: the demo's).")


def models() -> tuple[tuple[str, str], ...]:
    """``(label, source)`` pairs from --model and --weights (`config.model_sources`)."""
    return config.model_sources(FLAGS.model, FLAGS.weights)


def study_kwargs(default_out: str) -> dict:
    """The `ais_jax.study.config.StudyConfig` fields given by the shared flags.

    Args:
      default_out: the results directory when --out is not given.

    Raises:
      app.UsageError: --data_dir missing.
      ais_jax.preflight.UsageError: bad --model / --weights (`config.model_sources`).
      ais_jax.preflight.UsageError: --out inside or around the data.
      ais_jax.storage.WriteError: --out is a file or not writable.
    """
    if FLAGS.data_dir is None and FLAGS.data is None:
        raise app.UsageError(config.DATA_HELP)
    out = FLAGS.out or default_out
    # Before anything is loaded: an --out inside the data (its files would be read as images
    # next time) or around it, a file, or not writable.
    preflight.check_out_dir(out, data=[FLAGS.data_dir])
    return dict(
        out=out, data_dir=FLAGS.data_dir, models=models(),
        datasets=tuple(FLAGS.datasets) if FLAGS.datasets else None, matrix=FLAGS.matrix,
        kind=FLAGS.kind, name=FLAGS.name, symmetrize=FLAGS.symmetrize,
        batch_size=FLAGS.batch_size, chunk_maps=FLAGS.chunk_maps, rsatoolbox=FLAGS.rsatoolbox,
        data=FLAGS.data, report=FLAGS.report)


def demo_flags(uses: Sequence[str], own: Sequence[str] = ()) -> None:
    """Refuses given flags this run does not use (`preflight.refuse_unused_flags`)."""
    names = [f.name for f in FLAGS.get_flags_for_module(__name__)] + list(own)
    given = [n for n in names if FLAGS[n].present]
    preflight.refuse_unused_flags(given, (*uses, "report"), demo=FLAGS.demo)  # every demo: report


def report_errors(fn: Callable[[], int | None]) -> int:
    """Runs ``fn``; bad input or a failed read/write becomes one line ``error: ...``.

    The mapping of `ais_jax.preflight.run_cli`: exit 2 for a bad command line, 1 for bad input
    (ValueError, FileNotFoundError, MissingWeightsError) or a failed write (WriteError), 130
    for Ctrl-C; never a traceback for those.
    """
    return preflight.run_cli(lambda argv: fn())([])


def entry_point(fn: Callable[[], int | None]) -> Callable[[list[str]], int]:
    """The absl ``main(argv)`` of an experiments/ command whose work is ``fn()``.

    Refuses arguments absl did not parse (a stray word would otherwise run with defaults),
    then runs ``fn`` under `report_errors`. Use: ``app.run(cli.entry_point(run))``.
    """
    def main(argv: list[str]) -> int:
        def checked() -> int | None:
            preflight.refuse_leftovers(argv)
            return fn()
        return report_errors(checked)
    return main
