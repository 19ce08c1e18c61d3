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
    assert set(res["rows"]) == {"(a) torch loop", "(b) vmap path", "(c) fast path",
                                "(c') fast similarities"}
    assert all(row["ablations_per_s"] > 0 for row in res["rows"].values())
    assert "extrapolated" in res["rows"]["(a) torch loop"]["note"]
    assert res["greedy"]["incremental_s"] > 0
    assert "(c) fast path" in proc.stdout


def test_bench_rejects_too_few_images(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.bench", "--n=8",
                           f"--out={tmp_path / 'b.json'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "--n=8" in proc.stderr
    assert not (tmp_path / "b.json").exists()
