"""rsatoolbox RDMs out: export a run's human, model and ablated-model matrices.

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

Reading a user's human RDM is `ais_jax.data.rdm_files.read_rdm`'s. rsatoolbox is the optional
extra ``rsa``; it is imported only when one of these functions runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import ais_jax
from ais_jax import resume, storage
from ais_jax.data.files import IMAGE_IDS_FILE, write_image_ids
from ais_jax.data.rdm_files import IMAGE_DESCRIPTOR, load_rdms, rdm_module
from ais_jax.engine.ais import global_ais
from ais_jax.engine.similarity import alignment

log = logging.getLogger(__name__)

ABLATION_DESCRIPTOR = "ablated_map"
MODEL_MEASURE = "correlation distance: 1 - Pearson r between the images' embeddings"
FILES = {"human": "human_rdm.hdf5", "model": "model_rdm.hdf5", "ablated": "ablated_rdms.hdf5"}
EXPORT_DIR = "rsatoolbox"  # under a study item's folder
CHECK_FILE = "check.json"
EXPORT_VERSION = 1  # bump when the files' meaning changes: a resumed run rewrites them
TOLERANCE = 1e-6  # rsatoolbox (float64) vs the project's float32 kernels


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
    rdm = rdm_module()
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
    rdm = rdm_module()
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
