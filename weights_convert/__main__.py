"""Converts a PyTorch checkpoint into the weights file the experiments load.

  python -m weights_convert --model=ecoset --download
  python -m weights_convert --model=alexnet_ecoset --download
  python -m weights_convert --model=imagenet --src=vgg16-397923af.pth
  python -m weights_convert --model=transalnet_dense --src=TranSalNet_Dense.pth

``imagenet`` / ``ecoset`` are VGG-16 (also named ``vgg16_imagenet`` / ``vgg16_ecoset``, the same
file); ``vgg19_imagenet``, ``alexnet_imagenet``, ``alexnet_ecoset``, ``resnet50_imagenet`` and
``resnet50_ecoset`` the other networks. Output: ``$AIS_JAX_CACHE/weights/MODEL.safetensors``
(default cache ``~/.cache/ais_jax``), or ``--out``. Nothing is written when anything fails.
"""

from __future__ import annotations

import sys

from absl import app, flags

from ais_jax import preflight, storage, weights
from weights_convert import checkpoint
from weights_convert.download import SOURCES, fetch_checkpoint

USAGE = """\
usage: python -m weights_convert --model=MODEL (--download | --src=FILE.pth) [--out=FILE] [--force]

  python -m weights_convert --model=ecoset --download
  python -m weights_convert --model=alexnet_ecoset --download
  python -m weights_convert --model=imagenet --src=vgg16-397923af.pth
  python -m weights_convert --model=transalnet_dense --src=TranSalNet_Dense.pth

MODEL: one of {models}
(imagenet and ecoset are VGG-16; vgg16_imagenet and vgg16_ecoset name the same files).
Output: $AIS_JAX_CACHE/weights/MODEL.safetensors (default ~/.cache/ais_jax/...), or --out.
All flags: --helpshort."""

TRANSALNET_HINT = (
    "TranSalNet's authors distribute TranSalNet_Dense.pth through a Google Drive link, which "
    "cannot be downloaded here: fetch TranSalNet_Dense.pth by hand from their release "
    "(github.com/LJOVO/TranSalNet) and pass --src=/path/to/TranSalNet_Dense.pth"
)
# Classes of the published checkpoints, by the dataset each model name ends with.
CANONICAL_CLASSES = {"imagenet": 1000, "ecoset": 565}


def run(model: str, *, src: str | None = None, download: bool = False,
        out: str | None = None, force: bool = False) -> int:
    """Converts (after downloading, with ``download``), prints a summary; returns the exit code.

    Errors are printed to stderr (exit code 1) and leave no output file.
    """
    if download == (src is not None):
        raise app.UsageError("pass exactly one of --src=FILE.pth and --download")
    if download and model not in SOURCES:
        print(f"error: {TRANSALNET_HINT}", file=sys.stderr)
        return 1
    try:
        flag = "--out" if out is not None else f"the weights cache (${storage.CACHE_ENV})"
        out = checkpoint.output_path(model, out, force=force)
        preflight.check_out_file(out, flag=flag)  # before reading (or downloading) 0.5 GB
        if src is not None:
            checkpoint.sniff_checkpoint(_readable(src))
        src = fetch_checkpoint(model) if download else src
        path, meta, num_tensors = checkpoint.convert_checkpoint(model, src, out, force=force)
    except checkpoint.CheckpointError as e:
        # A file downloaded earlier is reused as it is; only deleting it fetches a fresh one.
        hint = f"\ndelete {src} and rerun with --download" if download else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        return 1
    except preflight.EXPECTED_ERRORS as e:  # every user-facing failure; see Raises
        print(f"error: {preflight.error_message(e)}", file=sys.stderr)
        return 1
    classes = f", {meta['num_classes']} classes" if "num_classes" in meta else ""
    print(
        f"Converted {src} ({model}, sha256 {meta['source_sha256']}) into {path}: "
        f"{num_tensors} tensors{classes}, format version {meta['format_version']}."
    )
    dataset = model.rsplit("_", 1)[-1]
    expected = CANONICAL_CLASSES.get(dataset) if model in weights.MODEL_ARCHITECTURES else None
    if expected is not None and int(meta["num_classes"]) != expected:
        title = weights.ARCHITECTURE_TITLES[weights.MODEL_ARCHITECTURES[model]]
        print(
            f"warning: the published {dataset} {title} has {expected} classes, this checkpoint "
            f"{meta['num_classes']}; check that --model names the right checkpoint",
            file=sys.stderr,
        )
    return 0


def _readable(src: str) -> str:
    """``src`` if it is a readable file; else FileNotFoundError / ValueError naming --src."""
    try:
        with open(src, "rb"):
            pass
    except FileNotFoundError:
        raise FileNotFoundError(f"--src={src}: no such checkpoint file") from None
    except IsADirectoryError:
        raise ValueError(f"--src={src}: is a folder; pass the checkpoint file") from None
    except OSError as e:
        raise ValueError(f"--src={src}: cannot read it ({e.strerror or e})") from None
    return src


def define_flags() -> None:
    """The command-line flags; defined only when run as a program, so importing is harmless."""
    flags.DEFINE_enum("model", None, list(weights.MODELS),
                      "Which checkpoint this is (required); e.g. --model=ecoset --download.")
    flags.DEFINE_string("src", None, "PyTorch checkpoint file (.pth) to convert.")
    flags.DEFINE_bool(
        "download", False, "Download the canonical checkpoint into the cache first (not for "
        "transalnet_dense)."
    )
    flags.DEFINE_string("out", None, "Output .safetensors file (default: the cache).")
    flags.DEFINE_bool("force", False, "Overwrite an existing output file.")


def main(argv: list[str]) -> int:
    preflight.refuse_leftovers(argv)
    f = flags.FLAGS
    if f.model is None:  # rather than absl's bare "flag --model must have a value"
        print(USAGE.format(models=", ".join(weights.MODELS)), file=sys.stderr)
        return 2
    return run(f.model, src=f.src, download=f.download, out=f.out, force=f.force)


if __name__ == "__main__":
    define_flags()
    app.run(preflight.run_cli(main))
