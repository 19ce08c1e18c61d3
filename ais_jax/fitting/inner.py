"""Inner splits of one fold's training images, for choosing hyper-parameters (SPEC §10).

Both fitting methods choose their penalty on the training images alone: these helpers check a
fold's (train, test) indices and split *only* the training indices further, so a test image
cannot enter a fit or a penalty choice by construction (the returned arrays are subsets of
``train``). Splits are of images, never of pairs: a held-out image takes all its pairs with it.
"""

from __future__ import annotations

import numpy as np

MIN_IMAGES = 3  # a correlation over pairs needs at least 3 pairs, i.e. 3 images


def check_split(train, test, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Validates a fold's image indices.

    Args:
      train: training image indices.
      test: test image indices.
      n: number of images in the dataset.

    Returns:
      (train, test) as int arrays, in the order given.

    Raises:
      ValueError: indices that are not 1-D integers, fall outside ``[0, n)``, repeat, are
        fewer than 3, or are shared by train and test.
    """
    out = []
    for name, idx in (("train", train), ("test", test)):
        idx = np.asarray(idx)
        if idx.ndim != 1 or idx.size < MIN_IMAGES or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{name} must be >= {MIN_IMAGES} integer image indices, "
                             f"got shape {idx.shape} dtype {idx.dtype}")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{name} indices must lie in [0, {n}), got {idx.min()}..{idx.max()}")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"{name} indices repeat an image")
        out.append(idx.astype(np.int64))
    shared = np.intersect1d(out[0], out[1])
    if shared.size:
        raise ValueError(f"train and test share images {shared[:10].tolist()}")
    return out[0], out[1]


def holdout_split(train: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One inner split of the training images: (inner_fit, inner_val), each ascending.

    Args:
      train: ``[n_train]`` training image indices.
      fraction: share of the training images held out (rounded, at least 3, leaving >= 3).
      seed: seed of the `np.random.default_rng` permutation.

    Returns:
      (inner_fit, inner_val): disjoint, their union is ``train``.
    """
    train = np.asarray(train)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"inner held-out fraction must lie in (0, 1), got {fraction}")
    n_val = max(MIN_IMAGES, int(round(fraction * train.size)))
    if train.size - n_val < MIN_IMAGES:
        raise ValueError(f"{train.size} training images are too few for an inner split")
    perm = np.random.default_rng(seed).permutation(train.size)
    return np.sort(train[perm[n_val:]]), np.sort(train[perm[:n_val]])


def kfold_split(train: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner k-fold cross-validation over the training images.

    Args:
      train: ``[n_train]`` training image indices.
      k: number of inner folds (each held-out chunk needs >= 3 images, the rest >= 3).
      seed: seed of the `np.random.default_rng` permutation.

    Returns:
      ``k`` pairs (inner_fit, inner_val), each ascending; the inner_val chunks partition
      ``train``.
    """
    train = np.asarray(train)
    if k < 2 or train.size // k < MIN_IMAGES:
        raise ValueError(f"cannot split {train.size} training images into {k} inner folds "
                         f"of >= {MIN_IMAGES} images")
    perm = np.random.default_rng(seed).permutation(train.size)
    chunks = np.array_split(train[perm], k)
    return [(np.sort(np.setdiff1d(train, c)), np.sort(c)) for c in chunks]
