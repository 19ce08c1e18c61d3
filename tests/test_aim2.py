"""Aim 2 pipeline on the shared study runner: outputs, cache reuse after Aim 1, resume, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.engine.ais import per_image_ais
from ais_jax.explain import heatmaps as hm
from ais_jax.study import aim2

REPO = Path(__file__).resolve().parents[1]


def _config(first: dict, out: Path, models=None, **kw) -> aim2.Aim2Config:
    data = Path(first["out"]) / "demo_data"
    ckpt = str(first["checkpoint"])
    return aim2.Aim2Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=models or (("synthetic", ckpt),),
        image_size=SMALL_DEMO["image_size"], batch_size=SMALL_DEMO["batch_size"], **kw)


def test_aim2_after_aim1_reuses_the_cache_and_resumes(tmp_path_factory, tmp_path, monkeypatch):
    first = small_demo_run(tmp_path_factory)  # Aim 1 ran on this data and checkpoint
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))
    config = _config(first, tmp_path / "aim2", overlays=3)
    result = aim2.run_aim2(config)
    row = result["rows"][0]
    assert row["cache"] == {"activations": "hit", "similarities": "hit"}
    assert not row["resumed"]
    folder = tmp_path / "aim2" / "synthetic" / "synthetic"
    n = SMALL_DEMO["n_images"]
    ais = np.load(folder / "per_image_ais.npy")
    grid = np.load(folder / "heatmaps_grid.npy")
    assert ais.shape == (n, 512) and grid.shape == (n, 4, 4)  # 64 px input: 4x4 conv5_3 grid
    manifest = json.loads((folder / "image_ids.json").read_text())
    assert manifest["image_ids"] == [f"img_{i:03d}.png" for i in range(n)]
    assert manifest["sizes"] == [[64, 64]] * n
    # The saved AIS is per_image_ais of the cached ablations and the human matrix.
    sims = first["cache"] / "ablations"
    with np.load(next(sims.iterdir())) as z:
        from ais_jax.engine.ablation import AblationSimilarities
        fields = AblationSimilarities._fields  # the entry also holds its own sha256
        ref = per_image_ais(AblationSimilarities(**{f: z[f] for f in fields}),
                            np.load(Path(first["out"]) / "demo_data" / "similarity.npy"))
    np.testing.assert_allclose(ais, np.asarray(ref), rtol=0, atol=0)
    assert sorted(p.name for p in (folder / "overlays").iterdir()) == [
        "img_000.png", "img_001.png", "img_002.png"]
    with PIL.Image.open(folder / "overlays" / "img_000.png") as img:
        assert img.mode == "RGB" and img.size == (64, 64)
    summary = (tmp_path / "aim2" / "summary.md").read_text()
    assert "cross-model parts" in summary and "skipped" in summary  # one model only
    for name in ("figure3.png", "figure2_synthetic.png", "models.csv", "run.json"):
        assert (tmp_path / "aim2" / name).exists(), name
    assert len(list((folder / "heatmaps_full").iterdir())) == 3  # the Figure 2 examples only

    again = aim2.run_aim2(config)
    assert again["rows"][0]["resumed"]
    np.testing.assert_array_equal(again["rows"][0]["heatmaps"].grid, grid)
    assert hm.read_heatmaps(folder).image_ids == tuple(manifest["image_ids"])


def test_two_models_give_match_and_ks_tables(tmp_path_factory, tmp_path, monkeypatch):
    first = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))
    ckpt = str(first["checkpoint"])
    # The same checkpoint under two labels: Match must be exactly 1 where defined, KS D = 0.
    result = aim2.run_aim2(_config(first, tmp_path / "two", models=(("a", ckpt), ("b", ckpt)),
                                   overlays=0, full_maps="none"))
    cross = result["datasets"]["synthetic"]
    ok = np.isfinite(cross["match"])
    np.testing.assert_allclose(cross["match"][ok], 1.0, atol=1e-6)
    assert cross["ks_mad_statistic"] == 0 and cross["ks_mean_ais_p"] == 1
    table = (tmp_path / "two" / "datasets.csv").read_text().splitlines()
    assert table[0].startswith("dataset,display_name,model_a,model_b")
    assert (tmp_path / "two" / "match_synthetic.csv").exists()
    assert not (tmp_path / "two" / "a" / "synthetic" / "overlays").exists()


def test_bad_input_fails_before_anything_is_written(tmp_path_factory, tmp_path, monkeypatch):
    first = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))
    with pytest.raises(ValueError, match="--full_maps"):
        aim2.run_aim2(_config(first, tmp_path / "x", full_maps="some"))
    with pytest.raises(ValueError, match="--colormap"):
        aim2.run_aim2(_config(first, tmp_path / "x", colormap="nope"))
    assert not (tmp_path / "x").exists()
    data = Path(first["out"]) / "demo_data"
    env = {**os.environ, storage.CACHE_ENV: str(tmp_path / "empty_cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.aim2", "--model=imagenet",
         f"--data_dir={data / 'images'}", f"--matrix={data / 'similarity.npy'}",
         "--kind=similarity", f"--out={tmp_path / 'cli'}"], cwd=REPO, env=env,
        capture_output=True, text=True,
        timeout=300)
    assert proc.returncode != 0
    assert "error: " in proc.stderr and "Traceback" not in proc.stderr
    assert "weights_convert --model=imagenet" in proc.stderr
    assert not (tmp_path / "cli").exists()


def test_cli_runs_a_list_of_models_with_a_file_each(tmp_path_factory, tmp_path):
    """--model=a,b with one --weights file each (the library test pairs three models)."""
    first = small_demo_run(tmp_path_factory)
    data, ckpt = Path(first["out"]) / "demo_data", str(first["checkpoint"])
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.aim2", "--model=imagenet,ecoset",
         f"--weights={ckpt},{ckpt}", f"--data_dir={data / 'images'}",
         f"--matrix={data / 'similarity.npy'}", "--kind=similarity", "--name=synthetic",
         "--overlays=0", f"--out={tmp_path / 'cli'}"], cwd=REPO,
        env={**os.environ, storage.CACHE_ENV: str(first["cache"])}, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "cli"
    rows = (out / "datasets.csv").read_text().splitlines()[1:]
    assert [r.split(",")[2:4] for r in rows] == [["imagenet", "ecoset"]]
    assert (out / "match_synthetic.csv").exists()
    run = json.loads((out / "run.json").read_text())
    assert [m for m, _ in run["config"]["models"]] == ["imagenet", "ecoset"]
    assert {c["source"] for c in run["checkpoints"].values()} == {ckpt}
