"""Cross-validation splits over images and the paired statistics of Aim 1 (SPEC §4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats

LEGACY_SEEDS = (111, 222, 333, 444, 555, 666, 777, 888)

SE_FORMULA = "SE = SD(retained - full) / sqrt(2 N)  (Loftus & Masson 1994, two paired conditions)"


@dataclasses.dataclass(frozen=True)
class Fold:
    """One train/test split of a dataset's images.

    Attributes:
      seed: the shuffling seed this fold came from.
      index: position of the test chunk among the ``k`` chunks (0-based).
      train: ``[n - n_test]`` image indices, ascending.
      test: ``[n_test]`` image indices, in shuffled order (as the released code).
    """

    seed: int
    index: int
    train: np.ndarray
    test: np.ndarray


def legacy_folds(n: int, seed: int, k: int = 5) -> list[np.ndarray]:
    """The released code's test chunks: legacy ``np.random.seed``, shuffle, split in ``k``.

    This is the project's one use of NumPy's hidden global RNG, kept for fold-by-fold parity
    with the paper; the caller's global state is saved and restored.

    Args:
      n: number of images.
      seed: legacy seed (the paper used 111, 222, ..., 888).
      k: number of folds.

    Returns:
      ``k`` arrays of test indices (``np.array_split`` of the shuffled ``arange(n)``; identical
      to ``reshape(k, -1)`` when ``k`` divides ``n``).
    """
    if k < 2 or n < k:
        raise ValueError(f"cannot split n={n} images into k={k} folds (need 2 <= k <= n)")
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        shuffled = np.arange(n)
        np.random.shuffle(shuffled)
    finally:
        np.random.set_state(state)
    return np.array_split(shuffled, k)


def cv_folds(n: int, seeds: tuple[int, ...] = LEGACY_SEEDS, k: int = 5) -> list[Fold]:
    """All folds of all seeds, in (seed, index) order; train = the images not in test."""
    folds = []
    for seed in seeds:
        for index, test in enumerate(legacy_folds(n, seed, k)):
            train = np.setdiff1d(np.arange(n), test)
            folds.append(Fold(int(seed), index, train, test))
    return folds


def paired_stats(full: np.ndarray, retained: np.ndarray) -> dict:
    """Means, paired-adjusted SEs and a paired two-tailed t-test of Retained vs Full.

    Args:
      full: ``[N]`` out-of-sample scores of the full model, one per fold.
      retained: ``[N]`` out-of-sample scores with the selected maps, same folds.

    Returns:
      dict with ``n``, ``mean_full``, ``mean_retained``, ``mean_diff`` (retained - full),
      ``sd_diff``, ``se_paired`` (``SD(diff) / sqrt(2N)``, the Loftus-Masson error bar for each
      condition), ``se_full`` / ``se_retained`` (plain standard errors, for reference), ``t`` and
      ``p`` (``scipy.stats.ttest_rel(retained, full)``; t > 0 when Retained is higher) and
      ``se_formula``.
    """
    full = np.asarray(full, np.float64)
    retained = np.asarray(retained, np.float64)
    if full.ndim != 1 or full.shape != retained.shape:
        raise ValueError(
            f"full and retained must be 1-D of equal length, got {full.shape} and {retained.shape}"
        )
    if full.size < 2:
        raise ValueError(f"paired statistics need at least 2 folds, got {full.size}")
    diff = retained - full
    n = full.size
    test = scipy.stats.ttest_rel(retained, full)
    sd_diff = float(np.std(diff, ddof=1))
    return {
        "n": int(n),
        "mean_full": float(full.mean()),
        "mean_retained": float(retained.mean()),
        "mean_diff": float(diff.mean()),
        "sd_diff": sd_diff,
        "se_paired": sd_diff / np.sqrt(2 * n),
        "se_full": float(scipy.stats.sem(full)),
        "se_retained": float(scipy.stats.sem(retained)),
        "t": float(test.statistic),
        "p": float(test.pvalue),
        "se_formula": SE_FORMULA,
    }
