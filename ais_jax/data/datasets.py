"""Image sets with a human similarity matrix: the Peterson et al. (2018) layout and a plain one.

A `Dataset` is n image files in sorted file-name order plus an n x n matrix ``similarity`` whose
entry (i, j) belongs to images i and j in that order (SPEC §3, §8).

* ``kind`` records what the file held, as declared by the caller: a ``'similarity'`` matrix is
  used as is; a ``'dissimilarity'`` (distance) matrix is converted by a sign flip (SPEC §3) so
  that ``similarity`` is always "larger = more similar". Nothing is guessed from the values.
* Only off-diagonal entries are used by any score (upper triangles exclude the diagonal, per-image
  rows exclude the image itself). The diagonal is therefore not validated: non-finite diagonal
  entries (e.g. NaN self-similarity) are accepted and stored as 0.
* The matrix must be symmetric to within ``SYMMETRY_RTOL`` of its largest off-diagonal magnitude.
  ``asymmetry`` records max |H - H^T| of the file as read; ``symmetrize=True`` replaces the
  matrix by (H + H^T) / 2 (never done unless asked; per-image scores read whole rows, so the two
  triangles matter).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ais_jax.data import rdm_files, release
from ais_jax.data.files import list_images, loadmat, scan_images

log = logging.getLogger(__name__)

MATRIX_SUFFIXES = (".npy", ".csv", ".mat", ".hdf5", ".h5")  # .hdf5/.h5: rsatoolbox RDMs
KINDS = ("similarity", "dissimilarity")

# Asymmetry tolerated without symmetrize=True, relative to the largest off-diagonal |entry|:
# room for float round-off in files written as text, not for real differences.
SYMMETRY_RTOL = 1e-6

PETERSON_CATEGORIES = ("animals", "automobiles", "fruits", "furniture", "various", "vegetables")
PETERSON_DISPLAY_NAMES = {c: c.capitalize() for c in PETERSON_CATEGORIES} | {
    "automobiles": "Transportation"  # as the paper calls it
}
_PETERSON_IMAGES = "images"
log = logging.getLogger(__name__)
_PETERSON_MATRICES = "sim_judgements"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """n images and their human similarity matrix.

    Attributes:
      name: display name (e.g. ``'Transportation'``).
      image_paths: the n image files, sorted by file name; row/column i of ``similarity``.
      similarity: ``[n, n]`` float64, read-only; larger = more similar (a declared
        dissimilarity matrix is stored sign-flipped).
      matrix_path: the file the matrix was read from.
      kind: ``'similarity'`` or ``'dissimilarity'``, as declared for ``matrix_path``.
      asymmetry: max |H - H^T| of the matrix as read (before any symmetrisation).
      symmetrized: whether ``similarity`` was replaced by (H + H^T) / 2.
      origin: how the files were found, JSON-ready (layout; the .mat variable; for the
        Peterson release the folders searched; for rsatoolbox files the RDM picked).
    """

    name: str
    image_paths: tuple[Path, ...]
    similarity: np.ndarray
    matrix_path: Path
    kind: str
    asymmetry: float
    symmetrized: bool = False
    origin: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        paths = tuple(Path(p) for p in self.image_paths)
        sim = np.array(self.similarity, dtype=np.float64)  # a private, read-only copy
        sim.setflags(write=False)
        object.__setattr__(self, "image_paths", paths)
        object.__setattr__(self, "similarity", sim)
        object.__setattr__(self, "matrix_path", Path(self.matrix_path))
        if self.kind not in KINDS:
            raise ValueError(
                f"Dataset {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )
        if sim.shape != (len(paths), len(paths)):
            raise ValueError(
                f"Dataset {self.name!r}: similarity has shape {sim.shape} but there are"
                f" {len(paths)} images"
            )

    @property
    def n(self) -> int:
        """Number of images."""
        return len(self.image_paths)

    @property
    def image_ids(self) -> tuple[str, ...]:
        """Image file names, in matrix order (sorted)."""
        return tuple(p.name for p in self.image_paths)

    @property
    def image_stems(self) -> tuple[str, ...]:
        """Image file names without their suffix, in matrix order: the ids under which
        ``python -m experiments.saliency`` writes one map per image (``<stem>.npy``).

        Not necessarily unique (``x.jpg`` and ``x.png``); the saliency tools reject such sets.
        """
        return tuple(p.stem for p in self.image_paths)

    def fingerprint(self, *, include_matrix: bool = True) -> str:
        """sha256 hex digest identifying the images (names and bytes) and, optionally, the matrix.

        Args:
          include_matrix: also hash ``kind`` and the stored ``similarity``; leave out for keys of
            results that depend on the images only (activations).
        """
        h = hashlib.sha256()
        for path in self.image_paths:
            name = path.name.encode()
            content = path.read_bytes()
            h.update(len(name).to_bytes(8, "little") + name)
            h.update(len(content).to_bytes(8, "little") + content)
        if include_matrix:
            h.update(self.kind.encode() + b"\0" + str(self.similarity.shape).encode())
            h.update(np.ascontiguousarray(self.similarity, "<f8").tobytes())
        return h.hexdigest()

    def manifest(self) -> dict:
        """A JSON-ready record of what was loaded (for outputs): order, source, choices."""
        return {
            "name": self.name,
            "n_images": self.n,
            "image_ids": list(self.image_ids),
            "image_dir": str(self.image_paths[0].parent) if self.image_paths else None,
            "matrix_path": str(self.matrix_path),
            "kind": self.kind,
            "asymmetry": self.asymmetry,
            "symmetrized": self.symmetrized,
            "origin": dict(self.origin),
            "fingerprint": self.fingerprint(),
        }


def _describe(variables: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {v.shape}" for k, v in variables.items()) or "none"


def read_matrix(path: str | os.PathLike) -> np.ndarray:
    """Reads a matrix from ``.npy``, ``.csv`` (comma-separated numbers, no header) or ``.mat``.

    A ``.mat`` file must hold exactly one 2-D numeric variable. An rsatoolbox ``.hdf5``/``.h5``
    file gives its one RDM (or the one ``<file>:<descriptor>=<value>`` picks) as a square
    *dissimilarity* matrix, unchecked against images (`load_plain` checks them).

    Returns:
      The matrix as float64 (shape unchecked).
    """
    if rdm_files.is_rdm_file(path):
        return rdm_files.read_rdm(path).matrix
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: matrix file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            matrix = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{path}: cannot read .npy file ({e})") from e
    elif suffix == ".csv":
        try:
            matrix = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as e:
            raise ValueError(
                f"{path}: cannot read as comma-separated numbers (a header row or labels?): {e}"
            ) from e
    elif suffix == ".mat":
        variables = loadmat(path)
        if len(variables) != 1:
            raise ValueError(
                f"{path}: expected exactly one 2-D numeric variable, found:"
                f" {_describe(variables)}; save the matrix alone"
            )
        (matrix,) = variables.values()
    else:
        raise ValueError(
            f"{path}: unsupported matrix format {path.suffix!r}; use one of {MATRIX_SUFFIXES}"
        )
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{path}: matrix must be real numbers, got dtype {matrix.dtype}")
    return matrix.astype(np.float64)


def validate_matrix(
    matrix: np.ndarray,
    n_images: int,
    *,
    source: str | os.PathLike,
    symmetrize: bool = False,
    images: Sequence[Path] | None = None,
    skipped: Sequence[str] = (),
) -> tuple[np.ndarray, float]:
    """Checks a human matrix against its images (see the module docstring for the rules).

    Args:
      matrix: the matrix as read, any shape.
      n_images: number of images it must describe.
      source: the file it came from, for messages.
      symmetrize: replace it by (H + H^T) / 2 instead of rejecting an asymmetric matrix.
      images: the images counted, and ``skipped`` the folder entries that were not (see
        `scan_images`), both listed in the message when the size does not match.

    Returns:
      ``(matrix [n, n] float64 with a zero-filled non-finite diagonal, asymmetry)``.

    Raises:
      ValueError: not square, size != n_images, non-finite off-diagonal entries, asymmetric
        beyond tolerance without ``symmetrize``, or (from 3 images on) one value in every
        off-diagonal entry (constant or all zero: no correlation with it is defined); the
        message names ``source``.
    """
    h = np.array(matrix, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"{source}: matrix has shape {h.shape}; expected a square n x n matrix")
    if h.shape[0] != n_images:
        counted = ""
        if images:
            counted = f" in {Path(images[0]).parent}: {', '.join(Path(p).name for p in images)}"
        if skipped:
            counted += f"; skipped as not images: {', '.join(skipped)}"
        raise ValueError(
            f"{source}: matrix is {h.shape[0]} x {h.shape[1]} but there are {n_images} images"
            f"{counted}"
        )
    off_diagonal = ~np.eye(n_images, dtype=bool)
    bad = ~np.isfinite(h) & off_diagonal
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{source}: {int(bad.sum())} non-finite off-diagonal entries (first at row {i},"
            f" column {j}: {h[i, j]})"
        )
    np.fill_diagonal(h, np.where(np.isfinite(np.diag(h)), np.diag(h), 0.0))
    values = h[off_diagonal]
    # With one pair (two images) there is nothing to call constant; the analyses state how
    # many images they need (e.g. `ais_jax.preflight.check_folds`).
    if n_images >= 3 and np.all(values == values[0]):
        what = "all zero" if values[0] == 0 else f"constant ({values[0]:g})"
        raise ValueError(
            f"{source}: the matrix's off-diagonal entries are {what}: a correlation with it is "
            "undefined. Is this the right file (not a placeholder or an identity matrix)?"
        )
    diff = np.abs(h - h.T)
    asymmetry = float(diff.max()) if n_images else 0.0
    tolerance = SYMMETRY_RTOL * float(np.abs(h[off_diagonal]).max(initial=0.0))
    if asymmetry > tolerance:
        if not symmetrize:
            i, j = np.unravel_index(np.argmax(diff), diff.shape)
            raise ValueError(
                f"{source}: matrix is not symmetric: max |H - H^T| = {asymmetry:.6g} (row {i},"
                f" column {j}) exceeds the tolerance {tolerance:.3g}; pass symmetrize=True"
                " (--symmetrize) to use (H + H^T) / 2"
            )
    if symmetrize:
        h = (h + h.T) / 2
    return h, asymmetry


def _dataset(
    name: str,
    image_dir: Path,
    matrix: np.ndarray,
    matrix_path: Path,
    *,
    kind: str,
    symmetrize: bool,
    origin: dict | None = None,
) -> Dataset:
    paths = list_images(image_dir)
    h, asymmetry = validate_matrix(matrix, len(paths), source=matrix_path, symmetrize=symmetrize,
                                   images=paths, skipped=scan_images(image_dir)[1])
    if kind == "dissimilarity":
        h = -h  # SPEC §3: a sign flip, so that Pearson correlations change sign only
    return Dataset(name, paths, h, matrix_path, kind, asymmetry, symmetrize, dict(origin or {}))


def load_plain(
    image_dir: str | os.PathLike,
    matrix_path: str | os.PathLike,
    *,
    kind: str | None,
    symmetrize: bool = False,
    name: str | None = None,
) -> Dataset:
    """Loads an image folder plus an n x n matrix file (``.npy``, ``.csv``, ``.mat`` or an
    rsatoolbox RDMs ``.hdf5``/``.h5``, optionally ``<file>:<descriptor>=<value>``).

    Row/column i of the matrix belongs to the i-th image in sorted file-name order; an RDMs
    file's pattern descriptor must list the images in that order
    (`ais_jax.interop.rsatoolbox.read_rdm`).

    Args:
      image_dir: folder of images (see `list_images`).
      matrix_path: the matrix file (see `read_matrix`).
      kind: ``'similarity'`` or ``'dissimilarity'``; required, never guessed. An RDMs file is
        a dissimilarity by definition: pass None (or ``'dissimilarity'``).
      symmetrize: use (H + H^T) / 2 instead of rejecting an asymmetric matrix.
      name: display name; defaults to the folder name.

    Returns:
      The validated `Dataset`.
    """
    if rdm_files.is_rdm_file(matrix_path):
        if kind not in (None, "dissimilarity"):
            raise ValueError(
                f"{matrix_path}: an rsatoolbox RDMs file holds dissimilarities; kind={kind!r}"
                " contradicts it (leave kind unset)"
            )
        image_dir = Path(image_dir)
        image_ids = [p.name for p in list_images(image_dir)]
        imported = rdm_files.read_rdm(matrix_path, image_ids=image_ids)
        return _dataset(name or image_dir.name, image_dir, imported.matrix, imported.path,
                        kind="dissimilarity", symmetrize=symmetrize, origin=imported.origin())
    image_dir, matrix_path = Path(image_dir), Path(matrix_path)
    if kind is None:
        raise ValueError(
            f"{matrix_path}: declare whether the matrix holds similarities or dissimilarities "
            "(kind='similarity' or kind='dissimilarity'; on the command line --kind=...). It "
            "is never guessed: a wrong kind flips the sign of every score."
        )
    if kind not in KINDS:
        raise ValueError(
            f"{matrix_path}: kind must be 'similarity' or 'dissimilarity', got {kind!r}"
        )
    return _dataset(
        name or image_dir.name,
        image_dir,
        read_matrix(matrix_path),
        matrix_path,
        kind=kind,
        symmetrize=symmetrize,
        origin={"layout": "plain"},
    )


def _peterson_matrix(directory: Path) -> tuple[np.ndarray, Path, str]:
    """The one 2-D variable whose name contains 'sim' among the ``.mat`` files of a folder."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: similarity folder not found")
    mats = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".mat" and p.is_file())
    if not mats:
        found = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
        raise FileNotFoundError(f"{directory}: no .mat file (found: {found})")
    candidates = []  # (file, variable, matrix)
    everything = []
    for path in mats:
        variables = loadmat(path)
        everything.append(f"{path.name}: {_describe(variables)}")
        candidates += [(path, k, v) for k, v in variables.items() if "sim" in k.lower()]
    if len(candidates) > 1:  # public Peterson loaders look for a file named "*sim*"
        named = [c for c in candidates if "sim" in c[0].name.lower()]
        candidates = named or candidates
    if len(candidates) != 1:
        problem = "no" if not candidates else "more than one"
        raise ValueError(
            f"{directory}: {problem} 2-D variable whose name contains 'sim' in the .mat files"
            f" ({'; '.join(everything)})"
        )
    path, variable, matrix = candidates[0]
    return matrix, path, variable


def load_peterson(
    root: str | os.PathLike,
    categories: Iterable[str] | str | None = None,
    *,
    symmetrize: bool = False,
    n_images: int | None = None,
) -> dict[str, Dataset]:
    """Loads categories of the Peterson et al. (2018) set (SPEC §8).

    Layouts: ``<root>/<category>/images/*.{jpg,png,...}`` and one MATLAB file under
    ``<root>/<category>/sim_judgements/`` holding a similarity matrix in a variable whose name
    contains ``'sim'``; or, where a category has no such two folders, the release as its
    authors distribute it: the one image folder and the one square ``.mat`` variable of
    matching size found in the category's folder tree (`ais_jax.data.release.find_category`).
    Each dataset's ``origin`` (and a log line) says which folder and variable were used.

    Args:
      root: folder holding one sub-folder per category.
      categories: folder names to load (default: all of `PETERSON_CATEGORIES`).
      symmetrize: use (H + H^T) / 2 instead of rejecting an asymmetric matrix.
      n_images: release layout only: the number of images to look for (None: any number
        that one image folder and one matrix share).

    Returns:
      category folder name -> `Dataset` (named by `PETERSON_DISPLAY_NAMES`), in the order asked.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: Peterson data folder not found")
    if categories is None:
        categories = PETERSON_CATEGORIES
    elif isinstance(categories, str):
        categories = (categories,)
    datasets = {}
    for category in categories:
        folder = release.find_category_folder(root, category)
        if (folder / _PETERSON_IMAGES).is_dir() and (folder / _PETERSON_MATRICES).is_dir():
            matrix, matrix_path, variable = _peterson_matrix(folder / _PETERSON_MATRICES)
            image_dir, layout = folder / _PETERSON_IMAGES, "peterson"
        else:
            found = release.find_category(folder, n_images=n_images)
            image_dir, matrix_path, variable = found.image_dir, found.matrix_path, found.variable
            matrix, layout = loadmat(matrix_path)[variable], "peterson-release"
        log.info("%s: images from %s, matrix %s variable %r (%s layout)", category, image_dir,
                 matrix_path, variable, layout)
        datasets[category] = _dataset(
            PETERSON_DISPLAY_NAMES.get(category, category.capitalize()),
            image_dir,
            matrix,
            matrix_path,
            kind="similarity",
            symmetrize=symmetrize,
            origin={"layout": layout, "category_folder": str(folder),
                    "image_dir": str(image_dir), "matrix_path": str(matrix_path),
                    "variable": variable},
        )
    return datasets
