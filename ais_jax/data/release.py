"""Finding a category's images and similarity matrix in the Peterson et al. (2018) release.

The release as its authors distribute it is not laid out as ``<category>/images`` plus
``<category>/sim_judgements``: each category's folder holds its own tree, and the image folder,
the MATLAB file and the variable inside it are named differently per category. Nothing here
hard-codes those names. Within a category's folder tree,

* an *image folder* is a folder with image files directly inside (`files.IMAGE_SUFFIXES`,
  hidden files skipped, as `files.list_images`);
* a *matrix* is a 2-D square real variable of a ``.mat`` file;

and the category is the one image folder and the one matrix whose sizes agree (n images, n x n;
``n_images`` narrows both to one size, 120 for the release). Two candidate image folders or two
candidate matrices is an error that lists them: the choice is the user's, never a guess.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ais_jax.data.files import IMAGE_SUFFIXES, loadmat

log = logging.getLogger(__name__)

# What the released categories hold (SPEC §8).
RELEASE_N_IMAGES = 120

# Other names a category's folder may have: the paper calls 'automobiles' Transportation.
CATEGORY_ALIASES = {"automobiles": ("transportation", "vehicles")}

# How deep below the release root a category folder is looked for (an archive often unpacks
# into one or two extra folders).
_CATEGORY_DEPTH = 3

_SKIPPED_DIRS = ("__MACOSX",)  # resource forks of archives made on macOS


@dataclasses.dataclass(frozen=True)
class ReleaseCategory:
    """Where one category's data was found.

    Attributes:
      folder: the category's folder.
      image_dir: the folder of its n images.
      matrix_path: the ``.mat`` file of its n x n similarity matrix.
      variable: the variable of ``matrix_path`` that holds the matrix.
      n_images: n.
      skipped: ``.mat`` files of the tree that could not be read (with the reason), so could
        not be searched.
    """

    folder: Path
    image_dir: Path
    matrix_path: Path
    variable: str
    n_images: int
    skipped: tuple[str, ...] = ()


def _walk(folder: Path):
    """Yields ``(directory, file paths)`` of a tree in sorted order, hidden entries skipped."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS
        )
        yield Path(dirpath), [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def find_category_folder(root: str | os.PathLike, category: str) -> Path:
    """The folder of ``category`` under a release root.

    ``<root>/<category>`` if it exists; otherwise the one folder, at most `_CATEGORY_DEPTH`
    levels down, named as the category or one of its `CATEGORY_ALIASES` (any case).

    Raises:
      FileNotFoundError: no such folder (the message lists the folders of ``root``).
      ValueError: more than one (the message lists them).
    """
    root = Path(root)
    if (root / category).is_dir():
        return root / category
    names = {category.lower(), *CATEGORY_ALIASES.get(category, ())}
    found = []
    for directory, _ in _walk(root):
        depth = len(directory.relative_to(root).parts)
        if depth > _CATEGORY_DEPTH:
            continue
        if depth and directory.name.lower() in names:
            found.append(directory)
    if len(found) > 1:
        raise ValueError(
            f"{root}: more than one folder for category {category!r}: "
            f"{', '.join(str(p) for p in found)}; pass the one to use as the root"
        )
    if not found:
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"{root / category}: category folder not found; {root} holds:"
            f" {', '.join(present) or 'no folders'}"
        )
    return found[0]


def find_category(folder: str | os.PathLike, *, n_images: int | None = None) -> ReleaseCategory:
    """Finds the image folder and the similarity matrix of one category's folder tree.

    Args:
      folder: the category's folder.
      n_images: the number of images (and matrix size) to look for; None: any size, as long as
        exactly one image folder and one matrix agree.

    Returns:
      The `ReleaseCategory`; the matrix itself is read by the caller (`files.loadmat`).

    Raises:
      FileNotFoundError: ``folder`` missing.
      ValueError: no image folder or no matrix of a matching size, or more than one of either;
        the message lists every candidate (and, when none fits, what was found).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: category folder not found")
    image_dirs: dict[Path, int] = {}  # folder -> number of images directly inside
    matrices: list[tuple[Path, str, int]] = []  # (file, variable, n)
    skipped: list[str] = []
    for directory, files in _walk(folder):
        count = sum(_is_image(p) for p in files)
        if count:
            image_dirs[directory] = count
        for path in files:
            if path.suffix.lower() != ".mat" or not path.is_file():
                continue
            try:
                variables = loadmat(path)
            except ValueError as e:  # v7.3 or damaged: cannot be searched, say so
                skipped.append(str(e))
                continue
            matrices += [
                (path, name, v.shape[0])
                for name, v in variables.items()
                if v.shape[0] == v.shape[1] and v.shape[0] >= 2
            ]

    sizes = {n_images} if n_images is not None else set(image_dirs.values())
    matrix_sizes = {k for _, _, k in matrices}
    dirs = [d for d, c in image_dirs.items() if c in sizes and c in matrix_sizes]
    mats = [m for m in matrices if m[2] in sizes and m[2] in image_dirs.values()]
    if not dirs or not mats:
        want = f"{n_images} images" if n_images is not None else "a size shared with a matrix"
        found_dirs = ", ".join(f"{d} ({c} images)" for d, c in image_dirs.items()) or "none"
        found_mats = ", ".join(f"{p}:{v} ({k}x{k})" for p, v, k in matrices) or "none"
        unreadable = f"; unreadable .mat files: {'; '.join(skipped)}" if skipped else ""
        raise ValueError(
            f"{folder}: no image folder and square matrix of matching size ({want}) found;"
            f" image folders: {found_dirs}; square matrices: {found_mats}{unreadable}"
        )
    if len(dirs) > 1:
        raise ValueError(
            f"{folder}: more than one candidate image folder: "
            f"{', '.join(f'{d} ({image_dirs[d]} images)' for d in dirs)}; use the plain layout"
            " (--data_dir=<image folder> --matrix=<file>) to choose"
        )
    if len(mats) > 1:
        raise ValueError(
            f"{folder}: more than one candidate similarity matrix: "
            f"{', '.join(f'{p}:{v} ({k}x{k})' for p, v, k in mats)}; use the plain layout"
            " (--data_dir=<image folder> --matrix=<file holding one matrix>) to choose"
        )
    (image_dir,), ((matrix_path, variable, n),) = dirs, mats
    if skipped:
        log.warning("%s: could not search %s", folder, "; ".join(skipped))
    return ReleaseCategory(folder, image_dir, matrix_path, variable, n, tuple(skipped))
