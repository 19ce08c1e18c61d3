"""Numbers reported by Truong, Pesenti & Hasson (2024) for Aim 1 (SPEC §7), as data.

They are for side-by-side tables only: reproducing them needs the real weights and data.
Keys are Peterson category directory names; models are ``'imagenet'`` and ``'ecoset'``
(the paper's two VGG-16s; `paper_model` maps a run's model label to them).
"""

from __future__ import annotations

# Model labels of the paper's two networks (VGG-16 trained on ImageNet / Ecoset) -> the key of
# the tables below. Other networks (VGG-19, AlexNet, ResNet-50, ...) have no paper numbers.
PAPER_MODELS = {"imagenet": "imagenet", "ecoset": "ecoset", "vgg16_imagenet": "imagenet",
                "vgg16_ecoset": "ecoset"}


def paper_model(label: str) -> str | None:
    """The paper's key (``'imagenet'`` / ``'ecoset'``) of a model label, or None for a network
    the paper did not study."""
    return PAPER_MODELS.get(label.lower())

# Figure 1: out-of-sample R^2 (mean over 40 folds) -> (full, retained).
FIGURE1_R2 = {
    "imagenet": {
        "animals": (0.55, 0.62),
        "automobiles": (0.50, 0.50),
        "fruits": (0.28, 0.35),
        "furniture": (0.25, 0.34),
        "various": (0.42, 0.56),
        "vegetables": (0.32, 0.32),
    },
    "ecoset": {
        "animals": (0.43, 0.49),
        "automobiles": (0.36, 0.39),
        "fruits": (0.31, 0.38),
        "furniture": (0.19, 0.25),
        "various": (0.45, 0.53),
        "vegetables": (0.36, 0.39),
    },
}

# Mean |S*| as printed in the paper. The released scripts printed the 0-based argmax, so these
# may be one smaller than the number of maps kept (which is what ais_jax reports).
FIGURE1_SET_SIZE = {
    "imagenet": {
        "animals": 385, "automobiles": 341, "fruits": 322,
        "furniture": 400, "various": 226, "vegetables": 252,
    },
    "ecoset": {
        "animals": 445, "automobiles": 493, "fruits": 397,
        "furniture": 305, "various": 296, "vegetables": 365,
    },
}  # fmt: skip

SET_SIZE_NOTE = (
    "The paper's |S*| may be one smaller than ours: the released scripts printed the 0-based "
    "argmax of the training curve, ais_jax reports the number of maps kept (argmax + 1)."
)

# Full vs Retained comparisons the paper reports as NOT significant at p < 0.01 (the other
# 10 of 12 are).
NOT_SIGNIFICANT = {("imagenet", "automobiles"), ("imagenet", "vegetables")}
SIGNIFICANCE_LEVEL = 0.01

# Cross-dataset correlations of global AIS vectors that the paper names; all others < 0.1.
AIS_CORRELATIONS = {
    "imagenet": {("fruits", "vegetables"): 0.29, ("animals", "various"): 0.16},
    "ecoset": {("fruits", "vegetables"): 0.26, ("automobiles", "furniture"): 0.23},
}
AIS_CORRELATION_OTHERS_BELOW = 0.1


def figure1(model: str, dataset: str) -> dict | None:
    """The paper's Figure 1 numbers for one model and Peterson category, or None if absent.

    Returns:
      ``{'full', 'retained', 'set_size', 'significant'}`` or None for an unknown pair.
    """
    model, dataset = paper_model(model), dataset.lower()
    if dataset not in FIGURE1_R2.get(model, {}):
        return None
    full, retained = FIGURE1_R2[model][dataset]
    return {
        "full": full,
        "retained": retained,
        "set_size": FIGURE1_SET_SIZE[model][dataset],
        "significant": (model, dataset) not in NOT_SIGNIFICANT,
    }


def ais_correlation(model: str, a: str, b: str) -> float | None:
    """The paper's named cross-dataset AIS correlation for a pair, or None if not named."""
    named = AIS_CORRELATIONS.get(paper_model(model), {})
    return named.get((a, b), named.get((b, a)))


# --- Aim 2 (SPEC §7) ------------------------------------------------------------------------

# Match score between the Ecoset and ImageNet heatmaps per dataset: (median, SD).
AIM2_MATCH = {
    "animals": (0.82, 0.17), "automobiles": (0.72, 0.17), "fruits": (0.73, 0.22),
    "furniture": (0.68, 0.24), "various": (0.66, 0.23), "vegetables": (0.64, 0.25),
}
# corr(Match, maxEntropy) where the paper reports it.
AIM2_MATCH_ENTROPY_CORR = {"animals": -0.39, "fruits": -0.37, "various": -0.29,
                           "vegetables": -0.31}
AIM2_STATEMENTS = (
    "mean AIS per map rarely exceeds 0.01",
    "per-image MAD is of order 1e-4 and larger for Ecoset than ImageNet (KS p < .05 in all six "
    "datasets)",
    "mean-AIS histograms do not differ (KS p >= .05) except Furniture (p = .002)",
)
# KS p-values the paper states per dataset: MAD always < .05; mean AIS >= .05 but Furniture.
AIM2_KS_MEAN_AIS_SIGNIFICANT = {"furniture"}


def aim2(dataset: str) -> dict | None:
    """The paper's Aim 2 numbers for a Peterson category, or None if unknown.

    Returns:
      ``{'match_median', 'match_sd', 'match_entropy_r' (None where not reported),
      'ks_mad_significant', 'ks_mean_significant'}``.
    """
    dataset = dataset.lower()
    if dataset not in AIM2_MATCH:
        return None
    median, sd = AIM2_MATCH[dataset]
    return {"match_median": median, "match_sd": sd,
            "match_entropy_r": AIM2_MATCH_ENTROPY_CORR.get(dataset),
            "ks_mad_significant": True,
            "ks_mean_significant": dataset in AIM2_KS_MEAN_AIS_SIGNIFICANT}
# Table 1: relative risk of the AIS heatmap's top-p% region given the saliency map's
# (mean, SD over images) -> TABLE1_RR[model][dataset][p]; 'all' pools the six datasets.
TABLE1_RR = {
    "ecoset": {
        "animals": {5: (31.9, 34.5), 10: (17.2, 18.1), 15: (12.2, 10.3)},
        "automobiles": {5: (7.4, 11.5), 10: (6.9, 10.4), 15: (6.0, 8.3)},
        "fruits": {5: (9.2, 16.5), 10: (7.9, 13.5), 15: (6.2, 8.2)},
        "furniture": {5: (7.5, 13.1), 10: (5.7, 7.2), 15: (4.8, 5.1)},
        "various": {5: (15.2, 22.6), 10: (9.6, 10.3), 15: (8.0, 7.5)},
        "vegetables": {5: (7.6, 12.5), 10: (5.6, 7.6), 15: (4.6, 4.8)},
        "all": {5: (13.1, 22.0), 10: (8.8, 12.4), 15: (7.0, 8.0)},
    },
    "imagenet": {
        "animals": {5: (33.6, 48.1), 10: (16.4, 14.5), 15: (11.9, 9.0)},
        "automobiles": {5: (5.0, 7.5), 10: (4.7, 5.6), 15: (4.9, 5.4)},
        "fruits": {5: (9.8, 20.5), 10: (7.1, 11.5), 15: (6.0, 9.0)},
        "furniture": {5: (7.0, 12.0), 10: (5.6, 7.4), 15: (4.8, 4.6)},
        "various": {5: (16.5, 33.9), 10: (9.4, 10.6), 15: (7.8, 8.2)},
        "vegetables": {5: (7.0, 13.9), 10: (4.9, 6.4), 15: (4.0, 4.1)},
        "all": {5: (13.2, 28.5), 10: (8.0, 10.7), 15: (6.6, 7.5)},
    },
}


def table1(model: str, dataset: str, p: float) -> tuple[float, float] | None:
    """The paper's Table 1 (mean, SD) of relative risk, or None for an unknown triple.

    Args:
      model: ``'ecoset'`` or ``'imagenet'`` (or ``'vgg16_ecoset'`` / ``'vgg16_imagenet'``).
      dataset: a Peterson category directory name, or ``'all'``.
      p: 5, 10 or 15 (percent).
    """
    by_p = TABLE1_RR.get(paper_model(model), {}).get(dataset.lower(), {})
    return by_p.get(int(p)) if float(p).is_integer() else None
