r"""A full-scale Aim 1 rehearsal on generated data of the paper's shape (`ais_jax.study.rehearsal`).

    python -m experiments.aim1_full --out=/tmp/rehearsal     # 6 x 120 images, 2 models, 5 x 8
    python -m experiments.aim1_full --out=/tmp/rehearsal --fc6_active=0.25

The matrices are random, so every score of the run is meaningless: only the times count. The
same --out again resumes. Prints stage -> wall seconds and writes <out>/rehearsal.json.
"""

from __future__ import annotations

import sys

from absl import app, flags

from ais_jax import preflight
from ais_jax.data.datasets import PETERSON_CATEGORIES
from ais_jax.engine import crossval
from ais_jax.study import rehearsal

# Its own FlagValues, so that bad flags end in one `error:` line (exit 2) like bad values do.
CLI_FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "Rehearsal folder (data/, weights/, cache/, aim1/, "
                    "rehearsal.json); the same folder again resumes.", flag_values=CLI_FLAGS)
flags.DEFINE_integer("n_images", 120, "Images per dataset.", flag_values=CLI_FLAGS)
flags.DEFINE_list("datasets", list(PETERSON_CATEGORIES), "Peterson category names.",
                  flag_values=CLI_FLAGS)
flags.DEFINE_integer("folds", 5, "Test chunks per shuffle.", flag_values=CLI_FLAGS)
flags.DEFINE_list("seeds", [str(s) for s in crossval.LEGACY_SEEDS], "Legacy shuffling seeds.",
                  flag_values=CLI_FLAGS)
flags.DEFINE_integer("image_size", 224, "Side of the generated images and network input.",
                     flag_values=CLI_FLAGS)
flags.DEFINE_integer("batch_size", 8, "Images per trunk call.", flag_values=CLI_FLAGS)
flags.DEFINE_integer("models", 2, "Random networks (1 or 2).", flag_values=CLI_FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the images, matrices and networks.",
                     flag_values=CLI_FLAGS)
flags.DEFINE_integer("matmul_size", 4096, "Side of the matmul timed at start and end.",
                     flag_values=CLI_FLAGS)
flags.DEFINE_bool("progress", True, "Overall progress bar.", flag_values=CLI_FLAGS)
flags.DEFINE_float("fc6_active", None, "Fraction of fc6 units the random networks have active "
                   "(a bias shift calibrated on 16 generated images); default: zero biases, "
                   "about half active. A trained VGG-16's fc6 is sparser.",
                   flag_values=CLI_FLAGS)

_HELP = ("--help", "-h", "--helpshort", "--helpfull", "-?")


def parse_flags(argv: list[str]) -> list[str]:
    """absl ``flags_parser``: this command's flags, then absl's own; bad ones -> ``error:``."""
    if any(a in _HELP for a in argv[1:]):
        print(rehearsal.__doc__ + "\nflags:\n" + CLI_FLAGS.get_help())
        sys.exit(0)
    try:
        rest = CLI_FLAGS(argv, known_only=True)
        return flags.FLAGS(rest)  # absl's own (--verbosity ...); refuses unknown --flags
    except flags.Error as e:
        print(f"error: {e} (all flags: --help)", file=sys.stderr)
        sys.exit(preflight.EXIT_USAGE)


def main(argv: list[str]) -> int:
    f = CLI_FLAGS
    try:
        preflight.refuse_leftovers(argv)
        settings = dict(n_images=f.n_images, categories=tuple(f.datasets), folds=f.folds,
                        seeds=preflight.int_list(f.seeds, "--seeds"), image_size=f.image_size,
                        batch_size=f.batch_size, models=f.models, seed=f.seed,
                        matmul_size=f.matmul_size, progress=f.progress,
                        fc6_active=f.fc6_active)
    except preflight.UsageError as e:
        print(f"error: {preflight.error_message(e)}", file=sys.stderr)
        return preflight.EXIT_USAGE
    return rehearsal.cli_main(f.out, **settings)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
