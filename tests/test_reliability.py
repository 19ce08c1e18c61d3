"""Issue #11, library side: integrity-checked weights and cache, clear write failures, early checks.

Each test names the class of the issue it covers (3: damaged weights, 4: cache keyed by the
tensors and self-verifying, 5: write failures and debris, 6: checks on the inputs, 7: skipped
image files, 9: files that are not checkpoints).
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from ais_jax import storage, weights
from ais_jax.data import datasets, files
from ais_jax.engine import activations
from weights_convert import checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(storage.CACHE_ENV, str(root))
    return root


def _params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"head": {"fc8": {"bias": rng.normal(size=64).astype(np.float32),
                             "kernel": rng.normal(size=(16, 64)).astype(np.float32)}}}


def _save(path: Path, params: dict) -> dict:
    return weights.save_params(path, params, {"model": "ecoset", "source_file": "x.pth",
                                              "source_sha256": "0" * 64})


def _flip_byte(path: Path, offset_from_end: int) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x10
    path.write_bytes(bytes(data))


# --- class 3: converted weights carry a digest of their tensors, verified on load -------------


def test_weights_digest_is_recorded_and_verified(tmp_path):
    path = tmp_path / "w.safetensors"
    written = _save(path, _params())
    flat = {"head/fc8/bias": _params()["head"]["fc8"]["bias"],
            "head/fc8/kernel": _params()["head"]["fc8"]["kernel"]}
    assert written["tensors_sha256"] == weights.tensors_digest(flat)
    params, meta = weights.load_params(path)
    assert meta["tensors_sha256"] == written["tensors_sha256"]
    np.testing.assert_array_equal(params["head"]["fc8"]["kernel"], flat["head/fc8/kernel"])
    # Another value in one tensor is another digest.
    flat["head/fc8/bias"] = flat["head/fc8/bias"] + np.float32(1)
    assert weights.tensors_digest(flat) != written["tensors_sha256"]


@pytest.mark.parametrize("offset_from_end", [1, 37, 64 * 4 + 5])  # data of kernel, bias, ...
def test_flipped_bytes_in_a_converted_file_are_refused_by_name(tmp_path, offset_from_end):
    path = tmp_path / "MODEL.safetensors"
    _save(path, _params())
    good = path.read_bytes()
    _flip_byte(path, offset_from_end)
    with pytest.raises(ValueError) as info:
        weights.load_converted(path)
    message = str(info.value)
    assert str(path) in message and "damaged" in message
    assert "python -m weights_convert --model=ecoset --src=x.pth --force" in message
    path.write_bytes(good)  # a good file again: loads, same numbers as before
    params, _ = weights.load_converted(path)
    np.testing.assert_array_equal(params["head"]["fc8"]["bias"], _params()["head"]["fc8"]["bias"])


def test_file_of_the_previous_format_says_to_reconvert(tmp_path):
    import safetensors.numpy

    path = tmp_path / "old.safetensors"
    safetensors.numpy.save_file({"head/fc8/bias": np.zeros(3, np.float32)}, str(path), metadata={
        "model": "imagenet", "source_file": "vgg16-397923af.pth", "source_sha256": "0" * 64,
        "format_version": "1", "ais_jax_version": "0.1.0"})
    with pytest.raises(ValueError, match=r"old.safetensors: weights format version 1.*python -m "
                                         r"weights_convert --model=imagenet "
                                         r"--src=vgg16-397923af.pth --force"):
        weights.load_params(path)


# --- class 4: cache entries keyed by the tensors used, and verified when read -----------------


def _images(folder: Path, n: int = 3, size: int = 32) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"im{i}.png"
        PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def fake_trunk(monkeypatch):
    """trunk_activations replaced by a counter: acts depend on the params' one value."""
    calls = []

    def fake(trunk_params, image_paths, *, image_size=224, batch_size=8, desc="", arch="vgg16"):
        calls.append(len(image_paths))
        value = float(np.asarray(trunk_params["w"]).reshape(-1)[0])
        return np.full((len(image_paths), 2, 2, 512), value, np.float32)

    monkeypatch.setattr(activations, "trunk_activations", fake)
    return calls


def test_activation_cache_is_keyed_by_the_tensor_digest(tmp_path, cache, fake_trunk):
    images = _images(tmp_path / "images")
    a = activations.cached_activations({"w": np.float32(1)}, "digest-a", images, image_size=32)
    b = activations.cached_activations({"w": np.float32(2)}, "digest-b", images, image_size=32)
    again = activations.cached_activations({"w": np.float32(1)}, "digest-a", images,
                                           image_size=32)
    assert (a.hit, b.hit, again.hit) == (False, False, True)
    assert a.path != b.path and fake_trunk == [3, 3]
    np.testing.assert_array_equal(again.value, a.value)
    with pytest.raises(ValueError, match="tensors_sha256"):
        activations.cached_activations({"w": np.float32(1)}, None, images)


def test_reconverted_weights_never_reuse_activations_of_other_tensors(tmp_path, cache,
                                                                     fake_trunk):
    # The same checkpoint name and sha256, converted twice into other tensors (as after
    # --force with another converter, or damage): other digests, so the second run misses.
    images = _images(tmp_path / "images", n=2)
    path = tmp_path / "w.safetensors"
    runs = []
    for value in (1.0, 2.0):
        weights.save_params(path, {"trunk": {"w": np.float32(value)}},
                            {"model": "ecoset", "source_file": "x.pth", "source_sha256": "f" * 64})
        params, meta = weights.load_params(path)
        assert meta["source_sha256"] == "f" * 64
        runs.append(activations.cached_activations(params["trunk"], meta["tensors_sha256"],
                                                   images, image_size=32))
    assert [r.hit for r in runs] == [False, False] and runs[0].path != runs[1].path
    assert runs[0].value[0, 0, 0, 0] == 1.0 and runs[1].value[0, 0, 0, 0] == 2.0


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_cache_entry_is_a_miss_and_is_replaced(tmp_path, cache, fake_trunk, damage,
                                                       caplog):
    images = _images(tmp_path / "images")
    first = activations.cached_activations({"w": np.float32(3)}, "d", images, image_size=32)
    good = first.path.read_bytes()
    data = bytearray(good)
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x01  # inside the stored activations
    elif damage == "garbage":
        data = bytearray(b"<html>not an npz</html>")
    else:
        data = bytearray()
    first.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="ais_jax.engine.activations"):
        second = activations.cached_activations({"w": np.float32(3)}, "d", images, image_size=32)
    assert not second.hit and fake_trunk == [3, 3]
    assert str(first.path) in caplog.text and "computing it again" in caplog.text
    assert first.path.read_bytes() == good  # replaced by the same bytes as a clean run
    assert activations.cached_activations({"w": np.float32(3)}, "d", images,
                                          image_size=32).hit


def test_damaged_similarity_entry_is_a_miss(tmp_path, cache, monkeypatch):
    calls = []

    def fake(head, blocks, chunk_maps=None):
        calls.append(1)
        n = blocks.shape[0]
        return activations.AblationSimilarities(np.eye(n), np.ones((512, n, n)),
                                                np.zeros((n, 512, n)), np.zeros((n, 512), bool))

    monkeypatch.setattr(activations, "ablation_similarities", fake)
    blocks = np.zeros((3, 512, 49), np.float32)
    first = activations.cached_similarities({}, blocks, "key")
    good = first.path.read_bytes()
    _flip_byte(first.path, len(good) // 2)  # inside global_
    second = activations.cached_similarities({}, blocks, "key")
    assert (first.hit, second.hit, len(calls)) == (False, False, 2)
    assert first.path.read_bytes() == good
    assert activations.cached_similarities({}, blocks, "key").hit


def test_cache_versions_are_part_of_the_key(tmp_path, monkeypatch):
    images = _images(tmp_path / "images", n=1)
    key = activations.activation_key("d", images, 32)
    monkeypatch.setattr(activations, "ACTIVATION_CACHE_VERSION",
                        activations.ACTIVATION_CACHE_VERSION + 1)
    assert activations.activation_key("d", images, 32) != key


# --- class 5: write failures name the path and the OS reason; no debris --------------------


def test_write_failure_names_the_path_and_the_reason_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.npy"
    storage.write_npy(target, np.arange(3))
    good = target.read_bytes()
    with pytest.raises(storage.WriteError) as info:
        with storage.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(info.value).startswith(f"{target}: cannot write: No space left on device")
    assert "MiB free" in str(info.value)
    assert target.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["out.npy"]


def test_writing_under_a_file_or_onto_a_folder_is_a_write_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(storage.WriteError, match=r"afile/sub/x.json: cannot write: Not a dir"):
        storage.write_json(tmp_path / "afile" / "sub" / "x.json", {})
    (tmp_path / "folder").mkdir()
    with pytest.raises(storage.WriteError, match=r"folder: cannot write: it is a directory"):
        storage.write_text(tmp_path / "folder", "x")
    assert sorted(os.listdir(tmp_path)) == ["afile", "folder"]
    assert os.listdir(tmp_path / "folder") == []


_FULL_DISK = """
import resource, signal, sys
import numpy as np
from ais_jax import preflight, storage, weights
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that is full after 4 KiB
def main(argv):
    if argv[1] == "npy":
        storage.write_npy(argv[2], np.zeros(10_000))
    else:
        weights.save_params(argv[2], {"w": np.zeros(10_000, np.float32)},
                            {"model": "ecoset", "source_file": "x", "source_sha256": "0"})
sys.exit(preflight.run_cli(main)(sys.argv))
"""


@pytest.mark.parametrize("writer", ["npy", "safetensors"])
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, writer):
    target = tmp_path / "out" / f"result.{writer}"
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, writer, str(target)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {target}: cannot write: ")
    assert "File too large" in lines[-1] or "requested and" in lines[-1]
    assert os.listdir(target.parent) == []  # no temporary file left behind


_KILLED_WRITE = """
import os, signal, sys
from ais_jax import storage
with storage.atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)  # as kill -9 in the middle of a conversion
"""


def test_orphan_of_a_killed_write_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "MODEL.safetensors"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(target)], cwd=REPO,
                          capture_output=True, timeout=120)
    assert proc.returncode == -9
    (orphan,) = tmp_path.iterdir()
    assert storage.is_temp_file(orphan) and orphan.name.startswith(".MODEL.safetensors.")
    # A temporary file of a live process (this one's parent) and one of another host stay.
    host, dead_pid = storage._TEMP_RE.match(orphan.name).groups()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    live = tmp_path / f".other.npy.{host}-{os.getppid()}-abc.tmp"
    foreign = tmp_path / f".other.npy.{other_host}-{dead_pid}-abc.tmp"
    live.write_text("")
    foreign.write_text("")
    storage._swept.clear()
    _save(target, _params())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, foreign.name])
    weights.load_params(target)


# --- class 6: constant or empty human matrices are refused before any work ----------------


@pytest.mark.parametrize("value", [0.0, 0.7])
def test_constant_matrix_is_refused(tmp_path, value):
    h = np.full((4, 4), value)
    np.fill_diagonal(h, 1.0)  # the diagonal is never used, so it does not rescue the matrix
    word = "all zero" if value == 0 else "constant"
    with pytest.raises(ValueError, match=rf"h.npy: the matrix's off-diagonal entries are {word}"
                                         r".*correlation with it is undefined"):
        datasets.validate_matrix(h, 4, source="h.npy")


def test_kind_must_be_declared(tmp_path):
    folder = tmp_path / "imgs"
    _images(folder, n=4)
    rng = np.random.default_rng(1)
    h = rng.normal(size=(4, 4))
    np.save(tmp_path / "h.npy", h + h.T)
    with pytest.raises(ValueError, match=r"h.npy: declare whether the matrix holds similarities "
                                         r"or dissimilarities.*--kind"):
        datasets.load_plain(folder, tmp_path / "h.npy", kind=None)


def test_batch_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        activations.trunk_activations({}, _images(tmp_path / "i", n=1), batch_size=0)


# --- class 7: skipped files are named; a size mismatch lists the images counted -------------


def test_skipped_entries_are_listed_and_warned_about(tmp_path, caplog):
    folder = tmp_path / "imgs"
    _images(folder, n=3)
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "notes.txt").write_text("x")
    (folder / "raw.heic").write_bytes(b"\0")
    (folder / "sub").mkdir()
    (folder / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    paths, skipped = files.scan_images(folder)
    assert [p.name for p in paths] == ["im0.png", "im1.png", "im2.png"]
    assert skipped == (".DS_Store (hidden)", "gone.jpg (broken link)",
                       "notes.txt (not an image extension)", "raw.heic (not an image extension)",
                       "sub/ (folder)")
    with caplog.at_level(logging.WARNING, logger="ais_jax.data.datasets"):
        assert files.list_images(folder) == paths
    assert "5 entries skipped as not images" in caplog.text
    assert "gone.jpg (broken link)" in caplog.text
    np.save(tmp_path / "h.npy", np.arange(16.0).reshape(4, 4) + np.arange(16.0).reshape(4, 4).T)
    with pytest.raises(ValueError) as info:
        datasets.load_plain(folder, tmp_path / "h.npy", kind="similarity")
    message = str(info.value)
    assert "matrix is 4 x 4 but there are 3 images" in message
    assert f"in {folder}: im0.png, im1.png, im2.png" in message
    assert "skipped as not images: .DS_Store (hidden), gone.jpg (broken link)" in message


# --- class 9: a file that is not a checkpoint says what it looks like ----------------------


@pytest.mark.parametrize("content, kind", [
    (b"\n<!DOCTYPE html>\n<html><head><title>Sign in</title>", "HTML"),
    (b"404: Not Found\n", "text"),
    (b'{"error": "quota exceeded"}', "JSON text"),
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "an HDF5 file"),
    (b"\x1f\x8b\x08\x00" + bytes(50), "a gzip archive"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{}}", "a safetensors file"),
])
def test_not_a_checkpoint_says_what_it_looks_like(tmp_path, content, kind):
    src = tmp_path / "vgg16.pth"
    src.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.convert_checkpoint("ecoset", src, tmp_path / "out.safetensors")
    message = str(info.value)
    assert message.startswith(f"{src}: not a PyTorch checkpoint (looks like {kind}")
    assert "pickle" not in message.split("(")[1].split(")")[0]  # not "refers to code"
    assert sorted(os.listdir(tmp_path)) == ["vgg16.pth"]


def test_checkpoint_starts_are_accepted_by_the_sniffer():
    for head in (b"PK\x03\x04rest", b"\x80\x02\x8a\x0alegacy", bytes(257) + b"ustar  \x00"):
        assert checkpoint.foreign_file_kind(head) is None
    assert checkpoint.foreign_file_kind(b"") == "an empty file"

