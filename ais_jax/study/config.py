"""The configuration every aim shares: where the data and weights are, what to run, where to write.

An aim's own config subclasses `StudyConfig`, adds its fields (all with defaults) and may
extend `validate` and `min_images`; `ais_jax.study.runner.run_study` calls both before anything
is read or written.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from ais_jax import preflight
from ais_jax.data.datasets import KINDS
from ais_jax.data.rdm_files import is_rdm_file
from ais_jax.weights import MODEL_ARCHITECTURES

BOTH = ("imagenet", "ecoset")  # --model=both: the paper's two VGG-16s, in its order
# The command line's message when no data is given (`experiments.cli`).
DATA_HELP = (
    "--data_dir is required (or run the synthetic demo with --demo). Get the Peterson et al. "
    "(2018) similarity data and lay it out as <root>/<category>/images/*.jpg and "
    "<root>/<category>/sim_judgements/*.mat, or pass a folder of images with --matrix, or a "
    "TFDS dataset with --data=tfds:NAME/CONFIG.")


def model_sources(names: Sequence[str], files: Sequence[str] | None = None
                  ) -> tuple[tuple[str, str], ...]:
    """`StudyConfig.models` from the --model and --weights lists.

    Args:
      names: converted model names (`ais_jax.weights.MODEL_ARCHITECTURES`), ``'both'`` standing
        for ``imagenet, ecoset``; each one labels its model.
      files: None, or one converted file per name, in order (the model's weights instead of
        the cached ones of that name).

    Returns:
      ``(label, source)`` pairs, in order.

    Raises:
      ais_jax.preflight.UsageError: no name, an unknown name (listing the known ones), a
        repeated one, or not one file per name.
    """
    known = ", ".join(MODEL_ARCHITECTURES)
    expanded = [n for m in names for n in (BOTH if m == "both" else (m,))]
    if not expanded:
        raise preflight.UsageError(f"--model is empty; give one or more of {known} (or both), "
                                   "comma-separated")
    unknown = [n for n in expanded if n not in MODEL_ARCHITECTURES]
    if unknown:
        raise preflight.UsageError(f"--model: unknown model {', '.join(map(repr, unknown))}; "
                                   f"known: {known} (or both = imagenet,ecoset)")
    repeated = sorted({n for n in expanded if expanded.count(n) > 1})
    if repeated:
        raise preflight.UsageError(f"--model={','.join(names)} names {', '.join(repeated)} more "
                                   "than once; give each model once")
    files = list(files or [])
    if files and len(files) != len(expanded):
        raise preflight.UsageError(
            f"--weights gives {len(files)} file(s) for {len(expanded)} model(s) "
            f"({', '.join(expanded)}): give one file per --model name, in order")
    return tuple(zip(expanded, files or expanded, strict=True))


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """What every study run needs: data, models, input size and batching.

    Attributes:
      out: results directory.
      data_dir: a Peterson root (``<root>/<category>/images``, ``.../sim_judgements``) or, with
        ``matrix``, a plain folder of images.
      models: ``(label, source)`` pairs; source is a model name (``'imagenet'``, ``'ecoset'``,
        ``'alexnet_ecoset'``, ...: converted weights in the cache) or a path to a converted
        ``.safetensors`` file (`model_sources` makes them from the command line). Each model's
        architecture comes from its file (`ais_jax.weights.load_model`).
      datasets: Peterson categories to run (None: all six).
      matrix: plain layout only: the ``n x n`` ``.npy``/``.csv``/``.mat`` matrix of the images
        in ``data_dir`` (sorted by file name), or an rsatoolbox RDMs ``.hdf5``
        (``<file>:<descriptor>=<value>`` picks one of several RDMs).
      kind: ``'similarity'`` or ``'dissimilarity'``: required with ``matrix`` (SPEC §3: never
        guessed; a dissimilarity matrix is converted by a sign flip), except for an
        rsatoolbox file, which says it holds dissimilarities; the Peterson layout holds
        similarities, so it needs none.
      data: ``tfds:NAME/CONFIG[:split]``, a TFDS dataset (`ais_jax.data.tfds`; ``data_dir``
        is then TFDS's data dir, None for its default) instead of a folder.
      name: plain layout only: the dataset's name (default: the folder's name).
      symmetrize: average the matrix with its transpose (default: use the upper triangle).
      image_size: shorter side of the network input.
      batch_size: images per trunk call.
      chunk_maps: maps per ablation step (None: the kernels' default).
      preamble: Markdown placed at the top of summary.md (the demos describe themselves there).
      rsatoolbox: also write each (model, dataset)'s human, model and ablated-model RDMs as
        rsatoolbox files, with a check of rho and AIS (`ais_jax.interop.rsatoolbox`).
      report: write ``<out>/report.html`` at the end (`ais_jax.report.html`).
    """

    out: str
    data_dir: str | None
    models: tuple[tuple[str, str], ...]
    datasets: tuple[str, ...] | None = None
    matrix: str | None = None
    kind: str | None = None
    name: str | None = None
    symmetrize: bool = False
    image_size: int = 224
    batch_size: int = 8
    chunk_maps: int | None = None
    preamble: str = ""
    rsatoolbox: bool = False
    data: str | None = None
    report: bool = True

    def validate(self) -> None:
        """Raises ValueError naming the flag when a setting is unusable.

        Subclasses call ``super().validate()`` and add their own checks.
        """
        if not self.models:
            raise ValueError("no model given (--model=NAME[,NAME...], e.g. ecoset, imagenet "
                             "or both)")
        labels = [label for label, _ in self.models]
        if len(set(labels)) != len(labels):
            raise ValueError(f"model labels must differ, got {labels}")
        if self.matrix is not None and self.kind is None and not is_rdm_file(self.matrix):
            raise ValueError(f"--kind is required with --matrix={self.matrix}: say whether it "
                             "holds similarities or dissimilarities (--kind=similarity or "
                             "--kind=dissimilarity); it is never guessed, and a wrong kind flips "
                             "the sign of every score")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.matrix is None and self.kind == "dissimilarity":
            raise ValueError("--kind=dissimilarity applies to a plain dataset's --matrix; the "
                             "Peterson layout's matrices are similarities")
        if self.image_size < 32:
            raise ValueError(f"--image_size must be at least 32 (the trunk pools by 16 and "
                             f"conv5_3 needs a 2x2 grid), got {self.image_size}")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}")
        if self.chunk_maps is not None and self.chunk_maps < 1:
            raise ValueError(f"--chunk_maps must be at least 1, got {self.chunk_maps}")
        if self.rsatoolbox:
            from ais_jax.data import rdm_files  # noqa: PLC0415 (optional extra)

            rdm_files.require()  # --rsatoolbox without the extra fails before any work

    def min_images(self) -> tuple[int, str]:
        """The fewest images a dataset may have, and why (for the error message)."""
        return 3, "a correlation over the other images of each image"
