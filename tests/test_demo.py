"""The embedded planted-truth demo finds what was planted, through the real Aim 1 pipeline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import scipy.stats
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.models.vgg16 import BLOCK, EMBED_DIM, NUM_MAPS
from ais_jax.study import aim1_demo

REPO = Path(__file__).resolve().parents[1]


def test_small_demo_recovers_the_planted_maps_far_above_chance(tmp_path_factory):
    result = small_demo_run(tmp_path_factory)
    rec = result["recovery"]
    planted = SMALL_DEMO["planted"]
    # Measured at this size (20 images of 64 px, |P| = 64): AUC 0.71, 37.5% of the top 64
    # maps planted. A random ranking gives AUC 0.5 and an overlap of |P| / 512 = 12.5%.
    assert rec["auc"] > 0.65
    assert rec["overlap"] >= 2 * planted / NUM_MAPS
    assert rec["chance_overlap"] == pytest.approx(planted / NUM_MAPS)


def test_small_demo_retained_beats_full_out_of_sample(tmp_path_factory):
    row = small_demo_run(tmp_path_factory)["row"]
    assert row["mean_retained"] > row["mean_full"]
    assert row["n_folds"] == SMALL_DEMO["folds"] * len(SMALL_DEMO["seeds"])


def test_small_demo_outputs_say_synthetic_and_are_readable(tmp_path_factory):
    result = small_demo_run(tmp_path_factory)
    out = Path(result["out"])
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# SYNTHETIC BENCHMARK")
    assert "Planted-truth recovery" in summary and "AUC" in summary
    for name in ("figure1.png", "demo_recovery.png"):
        with PIL.Image.open(out / name) as img:
            assert img.mode in ("RGB", "RGBA") and min(img.size) >= 400
    report = json.loads((out / "demo.json").read_text())
    assert report["synthetic"] is True
    assert report["recovery"] == pytest.approx(result["recovery"])
    human = np.load(out / "demo_data" / "similarity.npy")
    np.testing.assert_array_equal(human, human.T)
    assert (out / "results.csv").read_text().startswith("model,dataset,")


def test_recovery_is_mann_whitney_auc_and_top_overlap():
    ais = np.arange(512, dtype=np.float64)[::-1].copy()  # map 0 ranks first
    planted = np.array([0, 1, 2, 88])  # 3 at the top, one lower down
    rec = aim1_demo.recovery(ais, planted)
    assert rec["overlap"] == pytest.approx(3 / 4)
    others = np.setdiff1d(np.arange(512), planted)
    wins = np.mean([[a > b for b in ais[others]] for a in ais[planted]])
    assert rec["auc"] == pytest.approx(wins)
    ref = scipy.stats.mannwhitneyu(ais[planted], ais[others]).statistic / (4 * 508)
    assert rec["auc"] == pytest.approx(ref)


def test_separable_head_gives_each_map_its_own_units():
    rng = np.random.default_rng(0)
    blocks = rng.uniform(0, 2, (6, NUM_MAPS, BLOCK)).astype(np.float32)
    head = aim1_demo.separable_head(blocks, np.random.default_rng(1))
    w6 = head["fc6"]["kernel"].reshape(NUM_MAPS, BLOCK, NUM_MAPS, EMBED_DIM // NUM_MAPS)
    off = w6.copy()
    off[np.arange(NUM_MAPS), :, np.arange(NUM_MAPS), :] = 0
    assert not off.any()  # map k reaches only units 8k ... 8k+7
    own = w6[np.arange(NUM_MAPS), :, np.arange(NUM_MAPS), :]  # [512, 49, 8]
    np.testing.assert_allclose(own.sum(axis=1), 0, atol=1e-5)  # zero-mean blocks
    np.testing.assert_array_equal(head["fc7"]["kernel"], np.eye(EMBED_DIM, dtype=np.float32))
    assert not head["fc7"]["bias"].any()
    # Every unit is centred over the calibration images with a bias <= 0, so an ablated unit
    # (input 0) outputs ReLU(bias) = 0 exactly.
    assert (head["fc6"]["bias"] <= 0).all()
    pre = blocks.reshape(6, -1).astype(np.float64) @ head["fc6"]["kernel"] + head["fc6"]["bias"]
    np.testing.assert_allclose(pre.mean(axis=0), 0, atol=1e-5)


def test_cli_without_weights_fails_cleanly_and_writes_nothing(tmp_path_factory, tmp_path):
    data = Path(small_demo_run(tmp_path_factory)["out"]) / "demo_data"
    out = tmp_path / "results"
    env = {**os.environ, storage.CACHE_ENV: str(tmp_path / "empty_cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.aim1", "--model=ecoset",
         f"--data_dir={data / 'images'}", f"--matrix={data / 'similarity.npy'}",
         "--kind=similarity", f"--out={out}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "python -m weights_convert --model=ecoset" in proc.stderr
    assert not out.exists()
