"""Atomic writes: content, permissions of a normal new file, nothing left behind on failure."""

import os
import stat

import numpy as np
import pytest

from ais_jax import storage


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_umask_permissions_not_0600(tmp_path, umask):
    storage.write_text(tmp_path / "a.txt", "x")
    storage.write_json(tmp_path / "b.json", {"k": 1})
    storage.write_npy(tmp_path / "c.npy", np.zeros(3))
    reference = tmp_path / "plain.txt"
    reference.write_text("x")  # what open() gives a new file under this umask
    assert _mode(reference) == 0o666 & ~umask
    for name in ("a.txt", "b.json", "c.npy"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name


def test_content_is_written_and_replaces_an_old_file(tmp_path):
    target = tmp_path / "sub" / "dir" / "out.json"
    storage.write_json(target, {"b": [1, 2], "a": "z"})
    assert target.read_text() == '{\n  "a": "z",\n  "b": [\n    1,\n    2\n  ]\n}\n'
    storage.write_text(target, "new")
    assert target.read_text() == "new"
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    storage.write_npy(tmp_path / "x.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), array)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dir", "out.json", "sub", "x.npy"]


def test_exception_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_file_is_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    storage.write_text(tmp_path / "a.txt", "content")
    assert events == ["fsync", "replace"]
    assert (tmp_path / "a.txt").read_text() == "content"


def test_caller_may_replace_the_temporary_file(tmp_path, umask):
    # Writers such as safetensors create their own file at the path they are given.
    with storage.atomic_path(tmp_path / "w.bin") as tmp:
        tmp.unlink()
        tmp.write_bytes(b"\x00\x01")
    assert (tmp_path / "w.bin").read_bytes() == b"\x00\x01"
    assert _mode(tmp_path / "w.bin") == 0o666 & ~umask
