"""Issue #11, command-line side: `ais_jax.preflight` and the commands that use it.

Classes covered: 2 (arguments not understood), 5 (--out unusable: one line, before any work),
6 (flag values checked up front), 8 (--out inside / around the data), 9 (a --src that is not a
checkpoint), and no traceback for any of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from ais_jax import preflight, storage

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _assert_clean_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(error_lines) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]


# --- the functions ----------------------------------------------------------------------------


def test_leftover_arguments_are_named():
    preflight.refuse_leftovers(["prog"])
    with pytest.raises(preflight.UsageError, match=r"arguments not understood: 'true' 'x.npy'"):
        preflight.refuse_leftovers(["prog", "true", "x.npy"])


def test_integer_lists_name_the_flag_and_the_entry():
    assert preflight.int_list(["111", " 222"], "--seeds") == (111, 222)
    assert preflight.int_list("1,2", "--seeds") == (1, 2)
    with pytest.raises(preflight.UsageError, match=r"--seeds: '1.5' is not an integer"):
        preflight.int_list(["1", "1.5"], "--seeds")
    with pytest.raises(preflight.UsageError, match=r"--seeds: 'a' is not an integer"):
        preflight.int_list("a", "--seeds")
    with pytest.raises(preflight.UsageError, match=r"--seeds: empty list"):
        preflight.int_list([], "--seeds")
    with pytest.raises(preflight.UsageError, match=r"--ks: -1 is below the minimum 0"):
        preflight.int_list(["-1"], "--ks", minimum=0)


@pytest.mark.parametrize("value", [0, -3, None, True, 1.5])
def test_positive_integer_flags(value):
    with pytest.raises(preflight.UsageError, match=r"--batch_size: must be a positive integer"):
        preflight.check_positive(value, "--batch_size")


def test_folds_must_leave_three_test_images():
    preflight.check_folds(15, 5)  # 3 per fold
    with pytest.raises(preflight.UsageError, match=r"--folds=5: 14 images \(h.npy\) in 5 folds "
                                                   r"leaves 2 test image\(s\).*between 2 and 4"):
        preflight.check_folds(14, 5, source="h.npy")
    with pytest.raises(preflight.UsageError, match=r"need at least 2 folds"):
        preflight.check_folds(120, 1)
    with pytest.raises(preflight.UsageError, match=r"at least 6 images"):
        preflight.check_folds(5, 2)


def test_out_dir_checks(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    new = tmp_path / "new" / "out"
    assert preflight.check_out_dir(new, data=[data]) == new
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    assert os.listdir(tmp_path) == ["data"]  # nor is the probe file left
    (tmp_path / "file").write_text("x")
    with pytest.raises(storage.WriteError, match=r"file: cannot write: --out names an existing "
                                                 r"file"):
        preflight.check_out_dir(tmp_path / "file")
    with pytest.raises(storage.WriteError, match=r"cannot be created under it"):
        preflight.check_out_dir(tmp_path / "file" / "sub")
    with pytest.raises(preflight.UsageError, match=r"lies inside the data folder"):
        preflight.check_out_dir(data / "results", data=[data])
    (data / "h.npy").write_bytes(b"")
    with pytest.raises(preflight.UsageError, match=r"lies inside the data folder"):
        preflight.check_out_dir(data, data=[data / "h.npy"])  # an existing file: its folder
    (data / "h.npy").unlink()
    with pytest.raises(preflight.UsageError, match=r"contains the data folder"):
        preflight.check_out_dir(tmp_path, data=[data])
    with pytest.raises(preflight.UsageError, match=r"--out: an output folder is required"):
        preflight.check_out_dir(None)


def test_unwritable_out_is_a_write_error(tmp_path, monkeypatch):
    # Permission bits do not stop root, so the probe's failure is simulated at the OS call.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(preflight.tempfile, "mkstemp", refuse)
    with pytest.raises(storage.WriteError, match=rf"{tmp_path}: cannot write: --out \(.*\) is "
                                                 r"not writable \(Permission denied\)"):
        preflight.check_out_dir(tmp_path / "out")
    with pytest.raises(storage.WriteError, match=r"not writable \(Permission denied\)"):
        preflight.check_out_file(tmp_path / "b.json")


def test_out_file_checks(tmp_path):
    assert preflight.check_out_file(tmp_path / "b.json") == tmp_path / "b.json"
    with pytest.raises(storage.WriteError, match=r"--out names an existing folder"):
        preflight.check_out_file(tmp_path)


@pytest.mark.parametrize("error, code, text", [
    (preflight.UsageError("--x: bad"), 2, "error: --x: bad"),
    (ValueError("h.npy: bad matrix"), 1, "error: h.npy: bad matrix"),
    (FileNotFoundError(2, "No such file or directory", "/a/b"), 1,
     "error: /a/b: No such file or directory"),
    (storage.WriteError("/o/x.json", "No space left on device"), 1,
     "error: /o/x.json: cannot write: No space left on device"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_run_cli_maps_expected_errors_to_one_line(capsys, error, code, text):
    def main(argv):
        raise error

    assert preflight.run_cli(main)(["prog"]) == code
    err = capsys.readouterr().err
    assert err.startswith(text) and err.count("\n") == 1


def test_run_cli_keeps_bugs_loud():
    def main(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        preflight.run_cli(main)(["prog"])


# --- the commands -----------------------------------------------------------------------------


def test_bench_checks_arguments_and_out_before_running(tmp_path):
    proc = _cli("experiments.bench", "--n=15", "extra", f"--out={tmp_path / 'b.json'}")
    _assert_clean_error(proc, 2, "'extra'", "not understood")
    proc = _cli("experiments.bench", "--n=15", f"--out={tmp_path}")
    _assert_clean_error(proc, 1, str(tmp_path), "names an existing folder")
    (tmp_path / "f").write_text("")
    proc = _cli("experiments.bench", "--n=15", f"--out={tmp_path / 'f' / 'b.json'}")
    _assert_clean_error(proc, 1, "cannot be created under it")
    assert "matmul" not in proc.stdout  # refused before any measurement
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_saliency_refuses_out_inside_the_images_and_leftovers(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    empty_cache = {storage.CACHE_ENV: str(tmp_path / "cache")}
    proc = _cli("experiments.saliency", f"--data_dir={images}", f"--out={images / 'maps'}",
                env=empty_cache)
    _assert_clean_error(proc, 2, f"--out={images / 'maps'}", "inside the data folder")
    proc = _cli("experiments.saliency", f"--data_dir={images}", f"--out={tmp_path / 'maps'}",
                "stray", env=empty_cache)
    _assert_clean_error(proc, 2, "'stray'")
    assert sorted(os.listdir(tmp_path)) == ["imgs"] and os.listdir(images) == ["a.png"]


def test_weights_convert_names_what_a_non_checkpoint_looks_like(tmp_path):
    page = tmp_path / "vgg16_ecoset.pth"
    page.write_text("<!DOCTYPE html><html><body>Sign in to continue</body></html>")
    cache = {storage.CACHE_ENV: str(tmp_path / "cache")}
    proc = _cli("weights_convert", "--model=ecoset", f"--src={page}", env=cache)
    _assert_clean_error(proc, 1, str(page), "not a PyTorch checkpoint (looks like HTML")
    proc = _cli("weights_convert", "--model=ecoset", f"--src={page}", f"--out={tmp_path}",
                "--force", env=cache)
    _assert_clean_error(proc, 1, str(tmp_path), "names an existing folder")
    proc = _cli("weights_convert", "--model=ecoset", f"--src={page}", "again", env=cache)
    _assert_clean_error(proc, 2, "'again'")
    proc = _cli("weights_convert", "--model=ecoset", f"--src={tmp_path / 'nope.pth'}", env=cache)
    _assert_clean_error(proc, 1, "nope.pth: no such checkpoint file")
    assert sorted(os.listdir(tmp_path)) == ["vgg16_ecoset.pth"]
