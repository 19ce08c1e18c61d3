"""The full-scale Aim 1 rehearsal (experiments.aim1_full), at a tiny size.

The command runs in subprocesses, as a user runs it:
6 images of 32 px in one category, both random full-size networks (their fc6 biases shifted so
that a trained-like 25 % of fc6 is active, which takes the active-set fc7), 2 folds x 1 seed. The
persistent JAX compilation cache is shared by the subprocesses so that only the first one
compiles the kernels. No test asserts a time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors
from absl import flags

from ais_jax import storage
from ais_jax.data.datasets import load_peterson
from ais_jax.study import rehearsal
from experiments import aim1 as aim1_cli
from experiments import aim1_full as aim1_full_cli

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--n_images=6", "--datasets=animals", "--folds=2", "--seeds=111", "--image_size=32",
         "--matmul_size=64", "--noprogress", "--fc6_active=0.25"]
ITEMS = ["random_a/animals", "random_b/animals"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = {k: v for k, v in os.environ.items() if k != storage.CACHE_ENV}  # the default cache
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_compilation_cache"))
    return env


def _cli(out: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.aim1_full", f"--out={out}",
                           *SMALL, *extra], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def _report(out: Path) -> dict:
    return json.loads((out / rehearsal.REPORT).read_text())


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, env: dict) -> Path:
    """One uninterrupted rehearsal from an empty folder."""
    out = tmp_path_factory.mktemp("rehearsal") / "run"
    proc = _cli(out, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_report_has_every_stage_of_every_item(reference: Path):
    report = _report(reference)
    assert set(report["stages"]) == set(rehearsal.STAGES)
    assert report["complete_run"] and report["reused"] == []
    assert [it["item"] for it in report["items"]] == ITEMS
    for it in report["items"]:
        assert set(it["stages"]) == set(rehearsal.ITEM_STAGES)
        assert not it["stages"]["trunk"]["cache_hit"]
        assert not it["stages"]["similarities"]["cache_hit"]
        assert it["stages"]["folds"]["folds"] == 2
        assert it["stages"]["folds"]["folds_resumed"] == 0
        assert len(it["stages"]["folds"]["fold_seconds"]) == 2
        # Calibrated on these very images (the first 16 of the first dataset: all 6 here).
        assert it["fc6_active_fraction"] == pytest.approx(0.25, abs=1 / (6 * 4096))
        assert it["fc7_path"] == "active"
    assert report["stages"]["folds"]["folds"] == 4
    assert report["stages"]["weights"]["written"] == 2
    assert report["stages"]["data"]["images_written"] == 6
    machine = report["machine"]
    assert machine["cpu_count"] == os.cpu_count() and machine["backend"] == "cpu"
    assert machine["matmul_gflops_start"] > 0 and machine["matmul_gflops_end"] > 0
    # The config is the command line's default one, on the generated inputs.
    cfg = report["config"]
    assert (cfg["score"], cfg["methods"], cfg["chunk_maps"]) == ("r2", ["greedy"], None)
    assert cfg["data_dir"] == str(reference / "data") and cfg["out"] == str(reference / "aim1")
    # The run is self-contained: its cache is under --out.
    assert report["cache"] == str(reference / "cache")
    assert list((reference / "cache" / "activations").glob("*.npz"))

    rows = json.loads((reference / "aim1" / "results.json").read_text())["rows"]
    assert [(r["model"], r["dataset"]) for r in rows] == [("random_a", "animals"),
                                                          ("random_b", "animals")]
    assert all(r["n_folds"] == 2 and r["n_images"] == 6 for r in rows)
    assert "SYNTHETIC REHEARSAL" in (reference / "aim1" / "summary.md").read_text()


def test_generated_inputs_are_what_the_loaders_read(reference: Path):
    ds = load_peterson(reference / "data", ["animals"])["animals"]
    assert len(ds.image_paths) == 6
    np.testing.assert_array_equal(ds.similarity, ds.similarity.T)
    for label in ("random_a", "random_b"):
        with safetensors.safe_open(str(reference / "weights" / f"{label}.safetensors"),
                                   framework="numpy") as f:
            meta = f.metadata()
            assert f.get_slice("head/fc6/kernel").get_shape() == [25088, 4096]
        assert "SYNTHETIC" in meta["description"]


def test_interrupted_run_resumes_to_the_same_results(reference: Path, tmp_path: Path,
                                                     env: dict):
    out = tmp_path / "run"
    # The same networks without regenerating 1 GB; the data is generated afresh.
    (out / "weights").mkdir(parents=True)
    for p in (reference / "weights").iterdir():
        os.link(p, out / "weights" / p.name)
    # A cache the user chose is used instead of <out>/cache: the reference's, so the trunk and
    # ablations are read back and only the folds are computed again.
    env = {**env, storage.CACHE_ENV: str(reference / "cache")}
    cmd = [sys.executable, "-m", "experiments.aim1_full", f"--out={out}", *SMALL]
    # A shell that starts the tests in the background ignores SIGINT, and an ignored signal
    # stays ignored across exec; a handled one does not, so the child gets Python's Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 300
    while not list(out.glob("aim1/*/*/folds/*.json")):  # Ctrl-C after the first fold
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr
    assert not (out / "aim1" / "results.json").exists() and not (out / rehearsal.REPORT).exists()

    again = _cli(out, env)
    assert again.returncode == 0, again.stderr[-3000:]
    report = _report(out)
    assert report["cache"] == str(reference / "cache") and not (out / "cache").exists()
    assert report["stages"]["folds"]["folds_resumed"] >= 1
    assert not report["complete_run"] and "folds" in report["reused"]
    assert "NOT the full figure" in again.stdout
    assert (json.loads((out / "aim1" / "results.json").read_text())
            == json.loads((reference / "aim1" / "results.json").read_text()))
    for p in sorted((reference / "data").rglob("*.png")):  # generation is deterministic
        assert (out / "data" / p.relative_to(reference / "data")).read_bytes() == p.read_bytes()


def test_rerun_generates_nothing_and_resumes_everything(reference: Path, env: dict):
    inputs = {**_files(reference / "data"), **_files(reference / "weights")}
    proc = _cli(reference, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {**_files(reference / "data"), **_files(reference / "weights")} == inputs
    report = _report(reference)
    assert report["stages"]["data"]["skipped"] and report["stages"]["weights"]["skipped"]
    assert report["stages"]["trunk"]["cache_hits"] == 2
    assert report["stages"]["similarities"]["cache_hits"] == 2
    assert report["stages"]["folds"]["folds_resumed"] == 4
    assert not report["complete_run"]


def test_bad_out_is_one_error_line_and_writes_nothing(tmp_path: Path, env: dict):
    target = tmp_path / "a_file"
    target.write_text("keep")
    proc = _cli(target, env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(target) in lines[0]
    assert target.read_text() == "keep" and list(tmp_path.iterdir()) == [target]


def test_bad_command_lines_are_refused_before_any_work(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture):
    out = tmp_path / "run"
    aim1_full_cli.CLI_FLAGS(["prog", f"--out={out}", "--n_images=6"])
    assert aim1_full_cli.main(["prog", "stray"]) == 2
    assert capsys.readouterr().err.startswith("error: argument not understood: 'stray'")
    with pytest.raises(SystemExit) as e:
        aim1_full_cli.parse_flags(["prog", "--no_such_flag=1"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert rehearsal.cli_main(str(out), categories=("cats",)) == 2
    assert "--datasets: cats" in capsys.readouterr().err
    assert rehearsal.cli_main(str(out), n_images=5, folds=2) == 2  # 2 folds need 6 images
    assert "--n_images=5" in capsys.readouterr().err
    assert not out.exists()


def test_the_config_is_the_one_the_aim1_command_builds(tmp_path: Path):
    try:
        flags.FLAGS(["aim1", f"--data_dir={tmp_path / 'data'}", f"--out={tmp_path / 'aim1'}",
                     "--datasets=animals,fruits", "--folds=2", "--seeds=111,222"])
        cli = aim1_cli._config()
    finally:
        flags.FLAGS.unparse_flags()
    mine = rehearsal.rehearsal_config(tmp_path, categories=("animals", "fruits"), folds=2,
                                      seeds=(111, 222), image_size=224, batch_size=8, models=2)
    assert mine.preamble.startswith("> **SYNTHETIC REHEARSAL**")
    assert [label for label, _ in mine.models] == ["random_a", "random_b"]
    same = dict(models=cli.models, preamble=cli.preamble)
    assert dataclasses.replace(mine, **same) == cli


def test_a_folder_of_other_settings_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture):
    identity = rehearsal.data_identity(("animals",), 6, 32, 0)
    rehearsal.generate_data(tmp_path / "data", identity)
    before = _files(tmp_path)
    code = rehearsal.cli_main(str(tmp_path), categories=("animals",), n_images=7, folds=2,
                              image_size=32)
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "synthetic.json" in err and "n_images=6" in err
    assert _files(tmp_path) == before


def test_generation_completes_a_cut_off_one_with_the_same_files(tmp_path: Path):
    identity = rehearsal.data_identity(("animals", "fruits"), 6, 32, 0)
    first = rehearsal.generate_data(tmp_path, identity)
    assert first == {"images_written": 12, "matrices_written": 2, "skipped": False}
    missing = tmp_path / "fruits" / "images" / "img_003.png"
    data = missing.read_bytes()
    missing.unlink()
    kept = _files(tmp_path)
    assert rehearsal.generate_data(tmp_path, identity)["images_written"] == 1
    assert missing.read_bytes() == data
    after = _files(tmp_path)
    assert {k: v for k, v in after.items() if k != "fruits/images/img_003.png"
            and k != rehearsal.DATA_MANIFEST} == {k: v for k, v in kept.items()
                                                  if k != rehearsal.DATA_MANIFEST}
    assert rehearsal.generate_data(tmp_path, identity)["skipped"]
