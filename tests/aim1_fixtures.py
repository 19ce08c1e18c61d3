"""A small planted-truth demo, built once per test session and shared by the Aim 1 tests.

The synthetic network has VGG-16's full shapes (the loader checks them), so building it and
running the greedy curves dominate the cost; small images (64 px) and few images keep the whole
demo to well under a minute on 2 cores. Same code path as ``python -m experiments.aim1 --demo``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ais_jax import storage
from ais_jax.study import aim1_demo

SMALL_DEMO = dict(n_images=20, image_size=64, planted=64, noise=0.05, folds=2, seeds=(111,),
                  seed=0, batch_size=8)

_RUNS: dict[Path, dict] = {}  # basetemp -> result: one demo per session, whichever test asks


def small_demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Runs (once per session) the small demo; returns run_demo's result plus ``cache``."""
    base = tmp_path_factory.getbasetemp()
    if base not in _RUNS:
        cache = tmp_path_factory.mktemp("aim1_cache")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(storage.CACHE_ENV, str(cache))
            out = tmp_path_factory.mktemp("aim1_demo")
            result = aim1_demo.run_demo(aim1_demo.DemoConfig(out=str(out), **SMALL_DEMO))
        _RUNS[base] = {**result, "cache": cache}
    return _RUNS[base]
