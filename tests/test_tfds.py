"""Issue #24: the TFDS builders and ``--data=tfds:NAME/CONFIG[:split]`` (docs/tfds.md).

Tests marked ``tfds`` need the optional extra (TensorFlow); setup.cfg deselects them by default
and .ci/run runs them with ``-m tfds`` in a venv that has the extra, where a missing TensorFlow
fails them (it is imported inside the tests, never skipped). The unmarked tests run everywhere:
what happens without the extra, and the checks made before TensorFlow is imported.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.io
from absl import flags

from ais_jax import storage
from ais_jax.data import load_batch, load_peterson, load_plain
from ais_jax.data import tfds as tfds_data
from ais_jax.models.vgg16 import param_shapes
from ais_jax.study import aim1_demo
from ais_jax.weights import save_params
from experiments import aim1 as aim1_cli
from experiments import aim2 as aim2_cli

REPO = Path(__file__).resolve().parents[1]
N = 10  # images per dataset


def _run_cli(capsys, *args: str, cli=aim1_cli) -> tuple[int, str]:
    """``python -m experiments.aim1 ARGS`` (or ``cli``) in this process: (exit code, stderr)."""
    try:
        code = cli.main(flags.FLAGS(["aim", *args]))
    finally:
        flags.FLAGS.unparse_flags()
    return code, capsys.readouterr().err


def _one_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return err


# --- everywhere: without the extra, and before TensorFlow ------------------------------------


def test_missing_extra_is_one_error_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    with pytest.raises(tfds_data.MissingTfdsError, match=r"pip install -e '\.\[tfds\]'"):
        tfds_data.load_tfds("tfds:peterson_similarity/animals", tmp_path)
    out = tmp_path / "out"
    code, err = _run_cli(capsys, "--data=tfds:peterson_similarity/animals", f"--out={out}")
    assert code == 1
    assert "'tfds' extra" in _one_error(err) and ".[tfds]" in err
    assert not out.exists()


@pytest.mark.parametrize("spec, needle", [
    ("tfds:peterson_similarity", "expected tfds:NAME/CONFIG[:split]"),
    ("peterson_similarity/animals", "expected tfds:NAME/CONFIG[:split]"),
    ("tfds:peterson_similarity/animals:train[:6]", "slice"),
])
def test_bad_spec_is_refused_before_tensorflow(tmp_path, monkeypatch, spec, needle):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ValueError, match=re.escape(needle)):
        tfds_data.load_tfds(spec, tmp_path)


def test_data_with_matrix_or_kind_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    np.save(tmp_path / "sim.npy", np.eye(3))
    code, err = _run_cli(capsys, "--data=tfds:ais_plain/mine", f"--matrix={tmp_path / 'sim.npy'}",
                         "--kind=similarity", f"--out={tmp_path / 'out'}")
    assert code == 1 and "cannot be combined with --matrix" in _one_error(err)


def test_parse_spec_defaults_to_train():
    assert tfds_data.parse_spec("tfds:ais_plain/mine") == tfds_data.TfdsSpec(
        "ais_plain", "mine", "train")
    assert str(tfds_data.parse_spec("tfds:peterson_similarity/fruits:test")) == \
        "tfds:peterson_similarity/fruits:test"


# --- with the extra ------------------------------------------------------------------------


def _peterson_folder(root: Path) -> dict[str, np.ndarray]:
    """animals in the <category>/images + sim_judgements layout (PNG); fruits as a release
    tree (JPEG, a nested folder, a differently named variable). Returns the matrices."""
    rng = np.random.default_rng(24)
    matrices = {}
    aim1_demo.write_images(root / "animals" / "images", N, 40, rng)
    (root / "animals" / "sim_judgements").mkdir(parents=True)
    matrices["animals"] = np.corrcoef(rng.standard_normal((N, 30)))
    scipy.io.savemat(root / "animals" / "sim_judgements" / "animals_simmat.mat",
                     {"simMatrix": matrices["animals"]})
    photos = root / "release_2018" / "Fruits" / "photos"
    photos.mkdir(parents=True)
    for i in range(N):
        aim1_demo.draw_image(rng, 48).save(photos / f"fruit{i:02d}.jpg", format="JPEG",
                                          quality=90)
    matrices["fruits"] = np.corrcoef(rng.standard_normal((N, 30)))
    scipy.io.savemat(root / "release_2018" / "Fruits" / "judgments.mat",
                     {"pairwise": matrices["fruits"]})
    return matrices


def _plain_folder(root: Path) -> np.ndarray:
    rng = np.random.default_rng(7)
    aim1_demo.write_images(root / "images", N, 36, rng)
    d = 1 - np.corrcoef(rng.standard_normal((N, 25)))
    np.savetxt(root / "judgements.csv", d, delimiter=",", fmt="%.17g")
    return d


def _tfds_build(*args: str) -> str:
    """``python -m experiments.tfds_build ARGS`` in a fresh interpreter: its stdout."""
    done = subprocess.run([sys.executable, "-m", "experiments.tfds_build", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both builders built from generated folders: (folders, TFDS data dir, cache)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415 (the extra; a failure here is a failure)

    from ais_jax.data import tfds_builders  # noqa: PLC0415

    base = tmp_path_factory.mktemp("tfds")
    peterson, plain, data_dir = base / "peterson", base / "plain", base / "tfds_data"
    matrices = _peterson_folder(peterson)
    _plain_folder(plain)
    for category in ("animals", "fruits"):
        builder = tfds_builders.PetersonSimilarity(config=category, data_dir=str(data_dir))
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(peterson)))
    said = _tfds_build("ais_plain/mine", f"--manual_dir={plain}", f"--data_dir={data_dir}",
                       "--matrix=judgements.csv", "--kind=dissimilarity")
    assert f"--data=tfds:ais_plain/mine --data_dir={data_dir}" in said
    return {"peterson": peterson, "plain": plain, "data_dir": data_dir, "matrices": matrices,
            "cache": base / "cache"}


@pytest.fixture
def cache(built, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(built["cache"]))


def _folder_dataset(built, spec):
    if spec.startswith("tfds:ais_plain/"):
        return load_plain(built["plain"] / "images", built["plain"] / "judgements.csv",
                          kind="dissimilarity", name="mine")
    category = tfds_data.parse_spec(spec).config
    return load_peterson(built["peterson"], category)[category]


@pytest.mark.tfds
@pytest.mark.parametrize("spec, key", [("tfds:peterson_similarity/animals", "animals"),
                                       ("tfds:peterson_similarity/fruits:train", "fruits"),
                                       ("tfds:ais_plain/mine", "mine")])
def test_inputs_bit_identical_and_matrix_equal_to_the_folder(built, cache, spec, key):
    folder = _folder_dataset(built, spec)
    got_key, ds = tfds_data.load_tfds(spec, built["data_dir"])
    assert got_key == key and ds.name == folder.name and ds.kind == folder.kind
    assert ds.image_ids == folder.image_ids
    assert np.array_equal(load_batch(ds.image_paths), load_batch(folder.image_paths))
    assert np.array_equal(ds.similarity, folder.similarity)  # exact, float64
    assert ds.asymmetry == folder.asymmetry and ds.matrix_path == folder.matrix_path
    assert ds.fingerprint() == folder.fingerprint()  # names, bytes, kind and matrix
    assert ds.origin["layout"] == folder.origin["layout"]
    if key in built["matrices"]:
        assert np.array_equal(ds.similarity, built["matrices"][key])


@pytest.mark.tfds
def test_records_hold_the_file_bytes_rows_and_metadata(built):
    import tensorflow_datasets as tfds  # noqa: PLC0415

    builder = tfds.builder("peterson_similarity/fruits", data_dir=str(built["data_dir"]))
    folder = load_peterson(built["peterson"], "fruits")["fruits"]
    meta = builder.info.metadata
    assert meta["kind"] == "similarity" and meta["source_file"] == str(folder.matrix_path)
    assert np.array_equal(np.array(meta["matrix"]), folder.similarity)
    rows = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    seen = {}
    for ex in tfds.as_numpy(rows):
        seen[ex["image_id"].decode()] = (bytes(ex["image"]), ex["similarity_row"])
    assert sorted(seen) == list(folder.image_ids)
    for i, path in enumerate(folder.image_paths):
        content, row = seen[path.name]
        assert content == path.read_bytes()  # stored as is: no re-encoding
        assert row.dtype == np.float64 and np.array_equal(row, folder.similarity[i])
    assert "MANUAL_DOWNLOAD_INSTRUCTIONS" in dir(type(builder))


@pytest.mark.tfds
def test_missing_dataset_says_the_build_command(built, cache, tmp_path, capsys):
    with pytest.raises(FileNotFoundError) as caught:
        tfds_data.load_tfds("tfds:peterson_similarity/various", built["data_dir"])
    message = str(caught.value)
    assert (f"python -m experiments.tfds_build peterson_similarity/various --manual_dir=<the "
            f"Peterson release> --data_dir={built['data_dir']}") in message
    assert ("tfds build peterson_similarity --imports=ais_jax.data.tfds_builders "
            "--config=various --manual_dir=") in message
    out = tmp_path / "out"
    for cli in (aim1_cli, aim2_cli):  # the shared runner: every aim reads --data alike
        code, err = _run_cli(capsys, "--data=tfds:peterson_similarity/furniture",
                             f"--data_dir={built['data_dir']}", f"--out={out}", cli=cli)
        assert code == 1
        assert "experiments.tfds_build peterson_similarity/furniture" in _one_error(err)
        assert "peterson_similarity/animals" in err  # what the data dir holds
        assert not out.exists()


@pytest.mark.tfds
def test_unknown_split_lists_the_splits(built, cache):
    with pytest.raises(ValueError, match="no split 'test'.*train"):
        tfds_data.load_tfds("tfds:peterson_similarity/animals:test", built["data_dir"])


@pytest.mark.tfds
def test_plain_builder_without_a_matrix_says_how(built, tmp_path):
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from ais_jax.data import tfds_builders  # noqa: PLC0415

    # TFDS's `tfds build --config='{json}'` makes the config so: check the command we print.
    command = tfds_data.build_command(tfds_data.parse_spec("tfds:ais_plain/mine"), None,
                                      tfds_cli=True)
    config_json = command.split("--config='")[1].split("'")[0]
    config = tfds_builders.AisPlain.builder_config_cls(**json.loads(config_json))
    assert (config.name, config.kind) == ("mine", "similarity|dissimilarity")
    builder = tfds_builders.AisPlain(config="example", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="give the matrix file and its kind"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(built["plain"])))


def _comparable(value, drop=("seconds", "time", "wall", "date", "out", "path", "dir")):
    """results.json without wall-clock fields and paths."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if not any(d in k for d in drop)}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _numpy_random_params(num_classes: int) -> dict:
    """He-normal VGG-16 parameters drawn with NumPy (as `random_params`, several times faster
    on a loaded CPU for the 138M weights): a checkpoint of the full shapes the loader checks."""
    rng = np.random.default_rng(0)

    def draw(path, shape):
        if path[-1].key == "kernel":
            fan_in = int(np.prod(shape.shape[:-1]))
            w = rng.standard_normal(shape.shape, dtype=np.float32)
            return w * np.float32(np.sqrt(2.0 / fan_in))
        return rng.uniform(0.0, 0.01, shape.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, param_shapes(num_classes))


@pytest.mark.tfds
def test_aim1_from_tfds_equals_the_folder_run(built, cache, tmp_path, capsys):
    weights = tmp_path / "random_vgg16.safetensors"
    save_params(weights, _numpy_random_params(10),
                {"model": "random_vgg16", "source_file": "tests/test_tfds.py",
                 "source_sha256": "random-0", "num_classes": "10"})
    common = [f"--weights={weights}", "--folds=2", "--seeds=111", "--batch_size=6"]
    runs = {"folder": [f"--data_dir={built['peterson']}", "--datasets=animals"],
            "tfds": ["--data=tfds:peterson_similarity/animals", f"--data_dir={built['data_dir']}"]}
    results = {}
    for label, data in runs.items():
        code, err = _run_cli(capsys, *data, *common, f"--out={tmp_path / label}")
        assert code == 0, err
        results[label] = json.loads((tmp_path / label / "results.json").read_text())
    assert results["folder"]["rows"][0]["dataset"] == "animals"
    compared = _comparable(results["tfds"])
    assert {"mean_retained", "mean_full", "mean_set_size", "n_images"} <= set(compared["rows"][0])
    assert compared == _comparable(results["folder"])
    folds = [sorted((tmp_path / label).glob("*/animals/folds/*.json")) for label in runs]
    assert [p.name for p in folds[0]] == [p.name for p in folds[1]] != []
    for a, b in zip(*folds, strict=True):
        assert json.loads(a.read_text()) == json.loads(b.read_text())
    manifests = [json.loads((tmp_path / label / "run.json").read_text())["datasets"]["animals"]
                 for label in runs]
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"]
    assert manifests[1]["origin"]["tfds"]["spec"] == "tfds:peterson_similarity/animals:train"


@pytest.mark.tfds
def test_import_ais_jax_and_the_clis_need_no_tensorflow():
    code = ("import sys, ais_jax, ais_jax.data, ais_jax.data.tfds, ais_jax.study.aim1, "
            "ais_jax.study.aim2, ais_jax.study.aim3, experiments.aim1, experiments.tfds_build\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tensorflow_datasets'))\n"
            "assert not bad, bad\n"
            "import tensorflow_datasets\n")  # and the extra is there (this is the tfds venv)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
