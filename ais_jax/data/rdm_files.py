"""rsatoolbox RDM files in: a user's human RDM read as a dissimilarity matrix.

`read_rdm` reads one RDM of an rsatoolbox ``RDMs`` HDF5 file (a ``:descriptor=value`` selector
picks one of several) as an ``[n, n]`` dissimilarity matrix, its pattern descriptor checked
against the dataset's image ids. rsatoolbox is the optional extra ``rsa``; it is imported only
when one of these functions runs. Writing RDMs is `ais_jax.interop.rsatoolbox`'s.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ais_jax.data.files import IMAGE_SUFFIXES

RDM_SUFFIXES = (".hdf5", ".h5")
IMAGE_DESCRIPTOR = "image"


class MissingRsatoolboxError(ImportError, ValueError):
    """rsatoolbox is not installed (a ValueError too, so command lines report it in one line)."""


def require() -> None:
    """Raises `MissingRsatoolboxError` now if rsatoolbox is missing (check before a run)."""
    rdm_module()


def rdm_module():
    try:
        import rsatoolbox.rdm  # noqa: PLC0415 (optional dependency, imported on use)
    except ModuleNotFoundError as e:
        raise MissingRsatoolboxError(
            "rsatoolbox is not installed; install the optional extra: pip install 'ais_jax[rsa]'"
            " (or pip install rsatoolbox)"
        ) from e
    return rsatoolbox.rdm


def is_rdm_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an rsatoolbox HDF5 file (by suffix), selector aside."""
    return split_selector(path)[0].suffix.lower() in RDM_SUFFIXES


def split_selector(path: str | os.PathLike) -> tuple[Path, str | None]:
    """Splits ``'rdms.hdf5:descriptor=value'`` into the file and the selector.

    A path that exists as given is never split; otherwise a trailing ``:key=value`` after a
    ``.hdf5``/``.h5`` name is a selector (see `read_rdm`).
    """
    text = os.fspath(path)
    if ":" in text and not Path(text).exists():
        head, tail = text.rsplit(":", 1)
        if "=" in tail and Path(head).suffix.lower() in RDM_SUFFIXES:
            return Path(head), tail
    return Path(text), None


def load_rdms(path: str | os.PathLike) -> Any:
    """Reads an rsatoolbox HDF5 file as ``rsatoolbox.rdm.RDMs`` (closing it afterwards).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an rsatoolbox RDMs file; the message names it.
    """
    import h5py  # noqa: PLC0415

    rdm = rdm_module()
    from rsatoolbox.io.hdf5 import read_dict_hdf5  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: RDM file not found")
    try:
        with h5py.File(path, "r") as f:
            contents = read_dict_hdf5(f.id)
        return rdm.rdms_from_dict(contents)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: cannot read as an rsatoolbox RDMs HDF5 file ({e!r})") from e


@dataclasses.dataclass(frozen=True)
class ImportedRdm:
    """One RDM read from an rsatoolbox file.

    Attributes:
      matrix: ``[n, n]`` float64 dissimilarities, zero diagonal.
      path: the file.
      measure: its ``dissimilarity_measure`` (None if the file states none).
      selected: ``(descriptor, value)`` that picked the RDM, None if the file holds one.
      pattern_descriptor: the pattern descriptor checked against the image ids (None if no ids
        were given).
    """

    matrix: np.ndarray
    path: Path
    measure: str | None
    selected: tuple[str, str] | None
    pattern_descriptor: str | None

    def origin(self) -> dict:
        """JSON-ready record for a dataset manifest."""
        return {
            "layout": "rsatoolbox",
            "rdm_file": str(self.path),
            "dissimilarity_measure": self.measure,
            "selected": None if self.selected is None else "=".join(self.selected),
            "pattern_descriptor": self.pattern_descriptor,
        }


def _select(rdms: Any, path: Path, select: str | None) -> tuple[int, tuple[str, str] | None]:
    described = {k: list(v) for k, v in rdms.rdm_descriptors.items()}
    if select is None:
        if rdms.n_rdm != 1:
            raise ValueError(
                f"{path}: holds {rdms.n_rdm} RDMs; pick one with {path}:<descriptor>=<value>"
                f" (rdm descriptors: {', '.join(described) or 'none'})"
            )
        return 0, None
    key, _, value = select.partition("=")
    if key not in described:
        raise ValueError(
            f"{path}: no rdm descriptor {key!r} to select by (has: {', '.join(described)})"
        )
    hits = [i for i, v in enumerate(described[key]) if str(v) == value]
    if len(hits) != 1:
        shown = ", ".join(dict.fromkeys(str(v) for v in described[key][:20]))
        raise ValueError(
            f"{path}: {len(hits)} RDMs have {key}={value!r}; expected exactly one"
            f" ({key} values: {shown}{', ...' if len(described[key]) > 20 else ''})"
        )
    return hits[0], (key, value)


def _pattern_ids(rdms: Any, path: Path) -> tuple[str, list[str]]:
    """The pattern descriptor naming the images: 'image', else the only one besides 'index'."""
    named = {k: v for k, v in rdms.pattern_descriptors.items() if k != "index"}
    if IMAGE_DESCRIPTOR in named:
        key = IMAGE_DESCRIPTOR
    elif len(named) == 1:
        (key,) = named
    else:
        raise ValueError(
            f"{path}: no pattern descriptor {IMAGE_DESCRIPTOR!r} naming the images (has:"
            f" {', '.join(rdms.pattern_descriptors) or 'none'}); save the RDMs with"
            f" pattern_descriptors={{'{IMAGE_DESCRIPTOR}': [image file names in sorted order]}}"
        )
    return key, [str(v) for v in named[key]]


def check_pattern_ids(
    found: Sequence[str], image_ids: Sequence[str], *, source: str, descriptor: str
) -> None:
    """Checks an RDM's pattern ids against the images, in order.

    The ids may be file names (``a.jpg``) or file names without their suffix (``a``).

    Raises:
      ValueError: another count, or the first position where they differ (named, with both
        ids); says so when only the order differs.
    """
    names = [str(i) for i in image_ids]
    stems = [Path(i).stem for i in names]
    found = [str(i) for i in found]
    if found in (names, stems):
        return
    if len(found) != len(names):
        raise ValueError(
            f"{source}: pattern descriptor {descriptor!r} has {len(found)} ids but there are"
            f" {len(names)} images"
        )
    # Compare with the form the file uses: file names if any id is one (or looks like one).
    as_names = bool(set(found) & set(names)) or any(
        Path(f).suffix.lower() in IMAGE_SUFFIXES for f in found
    )
    expected = names if as_names else stems
    i = next(k for k, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
    order = " (the same ids in another order)" if sorted(found) == sorted(expected) else ""
    raise ValueError(
        f"{source}: pattern descriptor {descriptor!r} does not match the images{order}: first"
        f" difference at row {i}: {found[i]!r} in the file, {expected[i]!r} among the images"
        " (sorted by file name)"
    )


def read_rdm(
    path: str | os.PathLike,
    *,
    image_ids: Sequence[str] | None = None,
    select: str | None = None,
) -> ImportedRdm:
    """Reads one RDM of an rsatoolbox HDF5 file.

    Args:
      path: the file, optionally with a ``:descriptor=value`` selector (`split_selector`).
      image_ids: the dataset's image ids in matrix order; the file's pattern descriptor
        (``'image'``, or its only descriptor besides ``'index'``) must list them in that order.
      select: ``'descriptor=value'`` picking one RDM of several (e.g. ``'ablated_map=none'``,
        ``'index=3'``); overrides a selector in ``path``.

    Returns:
      The `ImportedRdm` (a dissimilarity matrix: rsatoolbox RDMs are dissimilarities).

    Raises:
      FileNotFoundError: no such file.
      ValueError: unreadable; several RDMs and no (or an ambiguous) selector; pattern ids that
        differ from the images.
    """
    path, in_path = split_selector(path)
    select = select if select is not None else in_path
    rdms = load_rdms(path)
    index, selected = _select(rdms, path, select)
    descriptor = None
    if image_ids is not None:
        descriptor, found = _pattern_ids(rdms, path)
        check_pattern_ids(found, image_ids, source=str(path), descriptor=descriptor)
    matrix = np.asarray(rdms[index].get_matrices()[0], np.float64)
    measure = rdms.dissimilarity_measure
    return ImportedRdm(matrix, path, None if measure is None else str(measure), selected,
                       descriptor)
