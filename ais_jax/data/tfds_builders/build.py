"""Builds one dataset of these builders (what ``python -m experiments.tfds_build`` runs).

TFDS's own ``tfds build --imports=ais_jax.data.tfds_builders`` does the same, but the CLI of
TFDS 4.9 imports apache-beam on start; `build` needs only the ``tfds`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from ais_jax.data.datasets import PETERSON_CATEGORIES
from ais_jax.data.tfds import parse_spec
from ais_jax.data.tfds_builders.ais_plain import AisPlain, AisPlainConfig
from ais_jax.data.tfds_builders.peterson_similarity import PetersonSimilarity


def build(spec: str, manual_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
          matrix: str | None = None, kind: str | None = None, images: str = "images") -> Path:
    """Builds ``tfds:peterson_similarity/CATEGORY`` or ``tfds:ais_plain/NAME`` from a folder.

    Args:
      spec: ``tfds:NAME/CONFIG`` (the ``tfds:`` may be left out).
      manual_dir: the Peterson release (either layout the folder loader reads), or for
        ``ais_plain`` the folder holding ``images`` and ``matrix``.
      data_dir: TFDS's data dir (None: its default).
      matrix, kind, images: ``ais_plain`` only, as ``--matrix``/``--kind`` of a plain folder.

    Returns:
      The dataset's folder, ``<data_dir>/<name>/<config>/<version>``.

    Raises:
      FileNotFoundError, ValueError: from the folder loaders, naming the file; an unknown
        builder or category; ``matrix``/``kind`` missing (or given for Peterson).
    """
    parsed = parse_spec(spec if spec.startswith("tfds:") else f"tfds:{spec}")
    manual_dir = Path(manual_dir).expanduser()
    if not manual_dir.is_dir():
        raise FileNotFoundError(f"--manual_dir={manual_dir}: folder not found")
    if parsed.name == "peterson_similarity":
        if parsed.config not in PETERSON_CATEGORIES:
            raise ValueError(f"{spec}: no category {parsed.config!r} (one of "
                             f"{', '.join(PETERSON_CATEGORIES)})")
        if matrix is not None or kind is not None:
            raise ValueError("--matrix/--kind are for ais_plain; the Peterson matrices are "
                             "found in the release and hold similarities")
        builder = PetersonSimilarity(config=parsed.config, data_dir=_str(data_dir))
    elif parsed.name == "ais_plain":
        if matrix is None or kind is None:
            raise ValueError(f"{spec}: ais_plain needs --matrix and --kind (similarity or "
                             "dissimilarity; never guessed)")
        builder = AisPlain(config=AisPlainConfig(name=parsed.config, images=images,
                                                 matrix=matrix, kind=kind),
                           data_dir=_str(data_dir))
    else:
        raise ValueError(f"{spec}: unknown builder {parsed.name!r} (peterson_similarity or "
                         "ais_plain)")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return Path(builder.data_dir)


def _str(path: str | os.PathLike | None) -> str | None:
    return None if path is None else str(Path(path).expanduser())
