"""Issue #11 on the shared study command line (experiments.aim1 and aim2; aim3 shares the flags).

Every bad input below must end in one ``error: ...`` line naming the flag or the file, an exit
status != 0 and nothing written, before any weights are read: the cache is empty, so a check
that came late would report the missing weights instead. Classes: 1 (--kind required with
--matrix), 2 (arguments not understood), 5 (--out unusable), 6 (--folds, --batch_size, --seeds,
a constant matrix), 8 (--out inside the data).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ais_jax import storage
from ais_jax.study import aim1_demo
from experiments import aim1 as aim1_cli
from experiments import aim2 as aim2_cli
from experiments import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def plain(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "empty_cache"))
    images = tmp_path / "images"
    aim1_demo.write_images(images, 10, 32, np.random.default_rng(0))
    np.save(tmp_path / "sim.npy", np.corrcoef(np.random.default_rng(1).standard_normal((10, 20))))
    return images, tmp_path / "sim.npy"


def _run(capsys, *args: str, cli=aim1_cli) -> tuple[int, str]:
    """``python -m experiments.aim1 ARGS`` (or ``cli``) in this process: (exit code, stderr)."""
    try:
        argv = flags.FLAGS(["aim", *args])
        code = cli.main(argv)
    finally:
        flags.FLAGS.unparse_flags()
    return code, capsys.readouterr().err


def _assert_one_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("extra, code, needles", [
    ([], 1, ["--kind is required with --matrix", "sim.npy"]),
    (["--kind=similarity", "stray"], 2, ["'stray'", "not understood"]),
    (["--kind=similarity", "--seeds=111,2x2"], 2, ["--seeds: '2x2' is not an integer"]),
    (["--kind=similarity", "--folds=4"], 1, ["has 10 images", "--folds=4", "at least 3"]),
    (["--kind=similarity", "--batch_size=0"], 1, ["--batch_size must be at least 1"]),
    (["--kind=dissimilarity", "--batch_size=-2"], 1, ["--batch_size"]),
])
def test_bad_flags_fail_before_any_work(plain, tmp_path, capsys, extra, code, needles):
    images, matrix = plain
    out = tmp_path / "out"
    got, err = _run(capsys, f"--data_dir={images}", f"--matrix={matrix}", f"--out={out}", *extra)
    assert got == code, err
    _assert_one_error(err, *needles)
    assert "weights_convert" not in err  # failed before the weights were looked for
    assert not out.exists() and not (tmp_path / "empty_cache").exists()


def test_constant_matrix_is_refused_by_name(plain, tmp_path, capsys):
    images, matrix = plain
    np.save(matrix, np.ones((10, 10)))
    got, err = _run(capsys, f"--data_dir={images}", f"--matrix={matrix}", "--kind=similarity",
                    f"--out={tmp_path / 'out'}")
    assert got == 1
    _assert_one_error(err, str(matrix), "constant (1)", "correlation with it is undefined")
    assert not (tmp_path / "out").exists()


def test_out_inside_the_images_or_a_file_is_refused(plain, tmp_path, capsys):
    images, matrix = plain
    common = (f"--data_dir={images}", f"--matrix={matrix}", "--kind=similarity")
    got, err = _run(capsys, *common, f"--out={images / 'results'}")
    assert got == 2
    _assert_one_error(err, f"--out={images / 'results'}", "inside the data folder")
    got, err = _run(capsys, *common, f"--out={tmp_path}")
    assert got == 2
    _assert_one_error(err, "contains the data folder")
    (tmp_path / "taken").write_text("x")
    got, err = _run(capsys, *common, f"--out={tmp_path / 'taken'}")
    assert got == 1
    _assert_one_error(err, f"{tmp_path / 'taken'}: cannot write", "existing file")
    assert sorted(os.listdir(images)) == [f"img_{i:03d}.png" for i in range(10)]
    assert sorted(os.listdir(tmp_path)) == ["images", "sim.npy", "taken"]


def test_a_good_command_line_gets_as_far_as_the_weights(plain, tmp_path, capsys):
    images, matrix = plain
    got, err = _run(capsys, f"--data_dir={images}", f"--matrix={matrix}", "--kind=similarity",
                    "--folds=3", "--seeds=111,222", f"--out={tmp_path / 'out'}")
    assert got == 1
    _assert_one_error(err, "python -m weights_convert --model=ecoset")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, code, needle", [
    ([], 1, "--kind is required with --matrix"),
    (["--kind=similarity", "oops"], 2, "'oops'"),
    (["--kind=similarity", "--batch_size=0"], 1, "--batch_size must be at least 1"),
])
def test_aim2_shares_the_checks(plain, tmp_path, capsys, extra, code, needle):
    images, matrix = plain
    got, err = _run(capsys, f"--data_dir={images}", f"--matrix={matrix}",
                    f"--out={tmp_path / 'out'}", *extra, cli=aim2_cli)
    assert got == code, err
    _assert_one_error(err, needle)
    assert not (tmp_path / "out").exists()
    got, err = _run(capsys, f"--data_dir={images}", f"--matrix={matrix}", "--kind=similarity",
                    f"--out={images / 'aim2'}", cli=aim2_cli)
    assert got == 2
    _assert_one_error(err, "inside the data folder")


def test_write_failures_are_one_line_through_the_shared_flags(capsys):
    def fails():
        raise storage.WriteError("/r/run.json", "No space left on device")

    assert cli.report_errors(fails) == 1
    assert capsys.readouterr().err == "error: /r/run.json: cannot write: No space left on device\n"


def test_real_process_exit_status_and_no_traceback(plain, tmp_path):
    images, matrix = plain
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.aim1", f"--data_dir={images}", f"--matrix={matrix}",
         f"--out={tmp_path / 'out'}", "--kind", "similarity", "leftover"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu",
             storage.CACHE_ENV: str(tmp_path / "empty_cache")})
    assert proc.returncode == 2, proc.stderr
    _assert_one_error(proc.stderr, "'leftover'")
    assert not (tmp_path / "out").exists()
