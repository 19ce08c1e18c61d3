"""rsatoolbox RDMs in and out: export a run's matrices, import a user's human RDM.

Export (`export_rdms`) writes, for one model and dataset, three ``rsatoolbox.rdm.RDMs`` files
saved by rsatoolbox's own HDF5 writer (``RDMs.save``), readable with
``rsatoolbox.rdm.load_rdm``::

    human_rdm.hdf5     1 RDM: the human matrix as a dissimilarity (see `human_dissimilarity`)
    model_rdm.hdf5     1 RDM: 1 - Pearson r of the full model's embeddings (ablated_map='none')
    ablated_rdms.hdf5  M RDMs: the same with map k removed in every image (ablated_map=k)
    image_ids.txt      the image ids, one per line, in pattern order

Every file carries ``pattern_descriptors={'image': ids}`` and descriptors naming the model,
dataset, layer and checkpoint digest. ``rsatoolbox.rdm.compare(model, human, method='corr')``
is the project's 2OI rho (Pearson of the upper triangles is invariant to ``d = a - b * s``
with ``b > 0``: both sides are sign-flipped similarities), and ``rho(model) - rho(ablated)``
its global AIS; `rsatoolbox_scores` computes both from the files.

Import (`read_rdm`) reads one RDM of an RDMs file as an ``[n, n]`` dissimilarity matrix, its
pattern descriptor checked against the dataset's image ids. rsatoolbox is the optional extra
``rsa``; it is imported only when one of these functions runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import ais_jax
from ais_jax import storage
from ais_jax.ais import global_ais
from ais_jax.data.datasets import IMAGE_IDS_FILE, IMAGE_SUFFIXES, write_image_ids
from ais_jax.similarity import alignment
from ais_jax.study import resume

log = logging.getLogger(__name__)

RDM_SUFFIXES = (".hdf5", ".h5")
IMAGE_DESCRIPTOR = "image"
ABLATION_DESCRIPTOR = "ablated_map"
MODEL_MEASURE = "correlation distance: 1 - Pearson r between the images' embeddings"
FILES = {"human": "human_rdm.hdf5", "model": "model_rdm.hdf5", "ablated": "ablated_rdms.hdf5"}
EXPORT_DIR = "rsatoolbox"  # under a study item's folder
CHECK_FILE = "check.json"
EXPORT_VERSION = 1  # bump when the files' meaning changes: a resumed run rewrites them
TOLERANCE = 1e-6  # rsatoolbox (float64) vs the project's float32 kernels


class MissingRsatoolboxError(ImportError, ValueError):
    """rsatoolbox is not installed (a ValueError too, so command lines report it in one line)."""


def require() -> None:
    """Raises `MissingRsatoolboxError` now if rsatoolbox is missing (check before a run)."""
    _rdm_module()


def _rdm_module():
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


# ---------------------------------------------------------------------------------------------
# Files.


def save_rdms(rdms: Any, path: str | os.PathLike) -> Path:
    """Saves an ``rsatoolbox.rdm.RDMs`` with rsatoolbox's HDF5 writer, atomically.

    rsatoolbox's writer opens the file and leaves it open; it is handed an HDF5 file this
    function opens and closes, so the file is complete before it gets its final name.
    """
    import h5py  # noqa: PLC0415 (a dependency of rsatoolbox)

    path = Path(path)
    with storage.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            rdms.save(f.id, file_type="hdf5")
    return path


def load_rdms(path: str | os.PathLike) -> Any:
    """Reads an rsatoolbox HDF5 file as ``rsatoolbox.rdm.RDMs`` (closing it afterwards).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an rsatoolbox RDMs file; the message names it.
    """
    import h5py  # noqa: PLC0415

    rdm = _rdm_module()
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


# ---------------------------------------------------------------------------------------------
# Export.


def _check_ids(image_ids: Sequence[str], n: int) -> list[str]:
    ids = [str(i) for i in image_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} image ids for matrices over {n} images")
    if len(set(ids)) != n:
        raise ValueError("image ids must be unique to name RDM patterns")
    for i in ids:  # rsatoolbox's HDF5 writer stores strings as ASCII bytes
        if not i.isascii():
            raise ValueError(
                f"image id {i!r} is not ASCII; rsatoolbox's HDF5 writer cannot store it"
            )
    return ids


def _upper(m: np.ndarray) -> np.ndarray:
    """``[..., n, n]`` -> ``[..., n(n-1)/2]``: the strict upper triangle, row-major, in float64:
    the order of rsatoolbox's vector form (scipy squareform) and of the project's 2OI."""
    rows, cols = np.triu_indices(m.shape[-1], k=1)
    return np.asarray(m, np.float64)[..., rows, cols]


def human_dissimilarity(similarity: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """The human matrix as an RDM's dissimilarities, and the measure that says how.

    Args:
      similarity: ``[n, n]`` as a `Dataset` stores it (larger = more similar; a declared
        dissimilarity matrix is stored sign-flipped).
      kind: the `Dataset`'s ``kind``.

    Returns:
      ``(d [n(n-1)/2] float64, measure)``. For ``'similarity'``: ``d = max - s`` with ``max``
      the largest off-diagonal similarity (so ``d >= 0`` and the most similar pair is 0); for
      ``'dissimilarity'``: the user's dissimilarities as read (``-similarity``). Either way
      ``d = a - s`` is a decreasing map of similarity, so Pearson-based comparisons with the
      model's ``1 - r`` reproduce rho with its sign.
    """
    s = _upper(similarity)
    if kind == "similarity":
        top = float(s.max(initial=0.0)) if s.size else 0.0
        return top - s, (
            f"human similarity judgments converted to dissimilarity: max - similarity,"
            f" max = {top!r} (the largest off-diagonal similarity)"
        )
    if kind == "dissimilarity":
        return -s, "human dissimilarity, as given in the matrix file"
    raise ValueError(f"kind must be 'similarity' or 'dissimilarity', got {kind!r}")


def export_rdms(
    out_dir: str | os.PathLike,
    *,
    image_ids: Sequence[str],
    human: np.ndarray,
    kind: str,
    full: np.ndarray,
    ablated: np.ndarray,
    model: str,
    dataset: str,
    checkpoint_sha256: str,
    layer: str = "fc7",
    ablated_layer: str = "conv5_3",
    extra: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Writes the human, full-model and ablated-model RDMs of one (model, dataset).

    Args:
      out_dir: folder for the files (see the module docstring).
      image_ids: the n image ids in matrix order.
      human: ``[n, n]`` human similarity (a `Dataset`'s ``similarity``).
      kind: the `Dataset`'s ``kind`` (how the human dissimilarity is derived).
      full: ``[n, n]`` Pearson r of the full model's embeddings.
      ablated: ``[M, n, n]`` the same, map k removed in every image (``global_``).
      model, dataset: labels.
      checkpoint_sha256: digest of the checkpoint the model RDMs come from.
      layer: the embedding layer compared (the penultimate ReLU, fc7, SPEC §1).
      ablated_layer: the layer whose maps are ablated.
      extra: further string descriptors for all three files (e.g. the human matrix's path).

    Returns:
      ``{'human' | 'model' | 'ablated' | 'image_ids': path}``.
    """
    rdm = _rdm_module()
    full = np.asarray(full)
    ablated = np.asarray(ablated)
    n = full.shape[-1]
    if full.shape != (n, n) or np.shape(human) != (n, n) or ablated.shape[1:] != (n, n):
        raise ValueError(
            f"shapes disagree: human {np.shape(human)}, full {full.shape}, ablated"
            f" {ablated.shape}; expected [n, n], [n, n], [M, n, n]"
        )
    ids = _check_ids(image_ids, n)
    common = {
        "dataset": dataset,
        "ais_jax_version": ais_jax.__version__,
        **{k: str(v) for k, v in (extra or {}).items()},
    }
    model_desc = {
        **common,
        "model": model,
        "layer": layer,
        "ablated_layer": ablated_layer,
        "checkpoint_sha256": checkpoint_sha256,
    }
    d_human, human_measure = human_dissimilarity(np.asarray(human), kind)

    def patterns() -> dict:
        return {IMAGE_DESCRIPTOR: list(ids)}  # RDMs mutates the dict (adds 'index')

    objects = {
        "human": rdm.RDMs(
            d_human[None],
            dissimilarity_measure=human_measure,
            descriptors={**common, "human_kind": kind},
            rdm_descriptors={"source": ["human"]},
            pattern_descriptors=patterns(),
        ),
        "model": rdm.RDMs(
            1.0 - _upper(full)[None],
            dissimilarity_measure=MODEL_MEASURE,
            descriptors=model_desc,
            rdm_descriptors={ABLATION_DESCRIPTOR: ["none"]},
            pattern_descriptors=patterns(),
        ),
        "ablated": rdm.RDMs(
            1.0 - _upper(ablated),  # [M, n(n-1)/2]
            dissimilarity_measure=MODEL_MEASURE,
            descriptors=model_desc,
            rdm_descriptors={ABLATION_DESCRIPTOR: list(range(ablated.shape[0]))},
            pattern_descriptors=patterns(),
        ),
    }
    out_dir = Path(out_dir)
    paths = {key: save_rdms(obj, out_dir / FILES[key]) for key, obj in objects.items()}
    paths["image_ids"] = write_image_ids(out_dir, ids)
    return paths


def rsatoolbox_scores(paths: Mapping[str, str | os.PathLike]) -> dict[str, Any]:
    """2OI and global AIS recomputed by rsatoolbox from exported files.

    Args:
      paths: `export_rdms`'s result (``'human'``, ``'model'``, ``'ablated'``).

    Returns:
      ``{'rho': float, 'ais_rho': [M], 'ais_r2': [M]}``, from
      ``rsatoolbox.rdm.compare(..., method='corr')`` (float64 throughout).
    """
    rdm = _rdm_module()
    human, full, ablated = (load_rdms(paths[k]) for k in ("human", "model", "ablated"))
    rho = float(rdm.compare(full, human, method="corr")[0, 0])
    rho_ablated = np.asarray(rdm.compare(ablated, human, method="corr"))[:, 0]  # [M]
    return {"rho": rho, "ais_rho": rho - rho_ablated, "ais_r2": rho**2 - rho_ablated**2}


def export_item(item: Any) -> dict:
    """``--rsatoolbox`` for one (model, dataset) of a study: RDM files, then their check.

    Writes `export_rdms`'s files under ``<item.out>/rsatoolbox/`` and ``check.json``: the
    project's 2OI rho and global AIS (rho-based) beside rsatoolbox's ``compare(...,
    method='corr')`` on the files as written, their largest differences and whether both are
    within `TOLERANCE`. Resumable: skipped when ``check.json`` has this item's key and the files
    exist.

    Args:
      item: an `ais_jax.study.item.StudyItem` (its cached similarities are reused).

    Returns:
      The ``check.json`` record.
    """
    out = Path(item.out) / EXPORT_DIR
    human = item.human
    key = resume.run_key(activations=item.activations_key, human=resume.digest(human),
                         kind=item.dataset.kind, ids=list(item.image_ids), version=EXPORT_VERSION)
    names = {**FILES, "image_ids": IMAGE_IDS_FILE}
    record = resume.read_record(out / CHECK_FILE, key)
    if record is not None and all((out / name).exists() for name in names.values()):
        return record
    sims = item.similarities.value
    paths = export_rdms(
        out, image_ids=item.image_ids, human=human, kind=item.dataset.kind, full=sims.full,
        ablated=sims.global_, model=item.model.label, dataset=item.key,
        checkpoint_sha256=item.model.checkpoint_sha256,
        extra={"dataset_name": item.dataset.name, "human_matrix": str(item.dataset.matrix_path),
               "activations_key": item.activations_key})
    ours_rho = float(alignment(sims.full, human, "rho"))
    ours_ais = np.asarray(global_ais(sims, human, score="rho"), np.float64)  # [M]
    theirs = rsatoolbox_scores(paths)
    d_rho = abs(theirs["rho"] - ours_rho)
    d_ais = float(np.max(np.abs(theirs["ais_rho"] - ours_ais), initial=0.0))
    ok = bool(d_rho <= TOLERANCE and d_ais <= TOLERANCE)  # False if either is NaN
    if not ok:
        log.warning("%s: rsatoolbox's scores differ from ours by %.3g (rho), %.3g (AIS)",
                    item.tag, d_rho, d_ais)
    return resume.write_record(out / CHECK_FILE, {
        "model": item.model.label, "dataset": item.key,
        "checkpoint_sha256": item.model.checkpoint_sha256,
        "files": names,
        "method": "rsatoolbox.rdm.compare(model_rdm, human_rdm, method='corr'); global AIS ="
                  " compare(model_rdm, human_rdm) - compare(ablated_rdms, human_rdm)",
        "rho": ours_rho, "rho_rsatoolbox": theirs["rho"],
        "max_abs_diff_rho": d_rho, "max_abs_diff_ais": d_ais,
        "tolerance": TOLERANCE, "within_tolerance": ok,
        "rsatoolbox_version": _version(),
    }, key)


def _version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("rsatoolbox")


# ---------------------------------------------------------------------------------------------
# Import.


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
    i = next(k for k, (a, b) in enumerate(zip(found, expected)) if a != b)
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
