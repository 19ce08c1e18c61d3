"""`python -m experiments.bench` runs end to end and writes its table as JSON (no timing checks)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_command_writes_every_row(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "experiments.bench", "--n=15", "--torch_maps=2",
           "--vmap_images=1", "--naive_prefixes=1", "--repeats=1", "--matmul_size=256",
           f"--out={out}"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["n"] == 15
    assert set(res["heads"]) == {"random", "trained-like"}
    rows = {"(a) torch loop", "(c) fast, plain fc7", "(c*) fast, active-set fc7"}
    assert set(res["heads"]["random"]["rows"]) == rows | {"(b) vmap path"}
    assert set(res["heads"]["trained-like"]["rows"]) == rows
    for head in res["heads"].values():
        assert all(row["ablations_per_s"] > 0 for row in head["rows"].values())
        assert head["greedy"]["plain_s"] > 0 and head["greedy"]["active_s"] > 0
    assert "extrapolated" in res["heads"]["random"]["rows"]["(a) torch loop"]["note"]
    assert "naive_s" in res["heads"]["random"]["greedy"]
    # The trained-like head is the random one with its fc6 biases shifted to the stated level.
    assert abs(res["heads"]["trained-like"]["fc6_active_fraction"] - 0.25) < 1e-3
    assert 0.4 < res["heads"]["random"]["fc6_active_fraction"] < 0.6
    assert "(c*) fast, active-set fc7" in proc.stdout and "assumed trained-like" in proc.stdout


def test_bench_aim1_full_flag_runs_the_rehearsal_checks_first(tmp_path):
    """--aim1_full hands over to experiments.aim1_full, whose --out check comes first."""
    target = tmp_path / "a_file"
    target.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "experiments.bench", f"--aim1_full={target}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error:") and str(target) in proc.stderr
    assert "Traceback" not in proc.stderr and target.read_text() == "x"


def test_bench_rejects_too_few_images(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.bench", "--n=8",
                           f"--out={tmp_path / 'b.json'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "--n=8" in proc.stderr
    assert not (tmp_path / "b.json").exists()


def test_bench_model_flag_writes_one_row_per_architecture(tmp_path):
    """--model=vgg16: the per-architecture table (its FLOP bound is the fc6-identity one)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "experiments.bench", "--model=vgg16", "--n=15",
                           "--repeats=1", "--matmul_size=256", f"--out={out}"], cwd=REPO,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    row = res["models"]["vgg16"]
    assert (row["maps"], row["grid"], row["block"]) == (512, [14, 14], 49)
    assert row["head_family"] == "flatten_linear" and row["ablated_layer"] == "conv5_3"
    assert row["flops"] == 15 * 512 * (2 * 49 * 4096 + 2 * 4096 * 4096) + 15 * (
        2 * 512 * 49 * 4096 + 2 * 4096 * 4096)
    assert row["ablations_per_s"] > 0 and row["greedy_s"] > 0
    assert "vgg16" in proc.stdout and "fc6 identity + fc7" in proc.stdout
