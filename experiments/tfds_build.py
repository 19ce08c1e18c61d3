r"""Builds a TFDS dataset of ais_jax's builders from a folder (needs the 'tfds' extra).

    python -m experiments.tfds_build peterson_similarity/animals --manual_dir=/data/peterson
    python -m experiments.tfds_build ais_plain/mine --manual_dir=DIR --matrix=judgements.csv \
        --kind=dissimilarity

then ``python -m experiments.aim1 --data=tfds:peterson_similarity/animals``. --data_dir is
TFDS's data dir (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). See docs/tfds.md.
Its flags are parsed with argparse, so they never clash with the study commands' absl flags.
"""

from __future__ import annotations

import argparse
import sys

from ais_jax import preflight


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.tfds_build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="peterson_similarity/CATEGORY or ais_plain/NAME")
    p.add_argument("--manual_dir", required=True, help="the folder to build from: the Peterson "
                   "release (either layout of docs/weights_and_data.md), or for ais_plain the "
                   "folder holding --images and --matrix")
    p.add_argument("--data_dir", help="TFDS's data dir (default: TFDS's own)")
    p.add_argument("--matrix", help="ais_plain: the n x n matrix file, relative to --manual_dir")
    p.add_argument("--kind", choices=["similarity", "dissimilarity"],
                   help="ais_plain: what --matrix holds (never guessed)")
    p.add_argument("--images", default="images",
                   help="ais_plain: the image folder, relative to --manual_dir")
    return p


def main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse printed the usage and why
        return int(e.code or 0)
    from ais_jax.data import tfds  # noqa: PLC0415 (the optional extra: a clear error without it)

    tfds.require()
    from ais_jax.data.tfds_builders import build  # noqa: PLC0415

    folder = build.build(args.dataset, args.manual_dir, args.data_dir, matrix=args.matrix,
                         kind=args.kind, images=args.images)
    where = f" --data_dir={args.data_dir}" if args.data_dir else ""
    print(f"built {folder}\nuse it with: --data=tfds:{args.dataset.removeprefix('tfds:')}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(preflight.run_cli(main)(sys.argv[1:]))
