"""Aim 1 pipeline: resume, caching, recorded folds, tables, and clean failures on bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.engine import crossval
from ais_jax.report import figures
from ais_jax.study import aim1, aim1_demo
from ais_jax.weights import MissingWeightsError


class Interrupted(Exception):
    pass


def _demo_config(result: dict, out: Path) -> aim1.Aim1Config:
    """The Aim 1 config the demo ran, writing to ``out`` instead."""
    data = Path(result["out"]) / "demo_data"
    return aim1.Aim1Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=(("synthetic", str(result["checkpoint"])),),
        folds=SMALL_DEMO["folds"], seeds=SMALL_DEMO["seeds"], image_size=SMALL_DEMO["image_size"],
        batch_size=SMALL_DEMO["batch_size"], test_curves=True)  # as the demo runs it


def test_interrupted_run_resumes_to_the_uninterrupted_results(tmp_path_factory, tmp_path,
                                                             monkeypatch):
    first = small_demo_run(tmp_path_factory)  # the uninterrupted run
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))
    config = _demo_config(first, tmp_path / "resumed")
    done = []

    def interrupt_after_first(record):
        done.append(record)
        raise Interrupted

    with pytest.raises(Interrupted):
        aim1.run_aim1(config, on_fold=interrupt_after_first)
    fold_dir = tmp_path / "resumed" / "synthetic" / "synthetic" / "folds"
    assert [p.name for p in fold_dir.iterdir()] == ["seed111_fold0.json"]
    assert not (tmp_path / "resumed" / "results.csv").exists()

    result = aim1.run_aim1(config)
    row = result["rows"][0]
    assert row["folds_resumed"] == 1
    # The second run skipped the trunk and the ablations (both cached by the first).
    assert row["cache_hits"] == {"activations": True, "similarities": True}
    ref_out = Path(first["out"])
    for ref in sorted((ref_out / "synthetic" / "synthetic" / "folds").iterdir()):
        got = json.loads((fold_dir / ref.name).read_text())
        assert got == json.loads(ref.read_text()), ref.name
    assert (tmp_path / "resumed" / "results.csv").read_text() == (
        ref_out / "results.csv").read_text()


def test_fold_records_are_consistent_and_use_the_legacy_folds(tmp_path_factory):
    out = Path(small_demo_run(tmp_path_factory)["out"]) / "synthetic" / "synthetic"
    info = json.loads((out / "dataset.json").read_text())
    n = SMALL_DEMO["n_images"]
    legacy = crossval.legacy_folds(n, 111, SMALL_DEMO["folds"])
    assert [f["test"] for f in info["folds"]] == [t.tolist() for t in legacy]
    assert info["data"]["image_ids"] == [f"img_{i:03d}.png" for i in range(n)]
    assert "sqrt(2 N)" in info["se_formula"]
    for f in sorted((out / "folds").iterdir()):
        rec = json.loads(f.read_text())
        train_curve = np.array(rec["train_curve"], np.float64)
        test_curve = np.array(rec["test_curve"], np.float64)
        assert rec["set_size"] == int(np.nanargmax(train_curve)) + 1
        # Retained comes from a masked head pass over the test images, the test curve from the
        # prefix sums: the same score up to float32 round-off.
        assert rec["retained_test"] == pytest.approx(test_curve[rec["set_size"] - 1], abs=1e-6)
        assert rec["test_curves"] and rec["fc7_path"] in ("active", "plain")
        # Full from the unablated similarities equals the greedy curve's last point (S_512).
        assert rec["full_test"] == pytest.approx(test_curve[-1], abs=1e-5)
        assert rec["full_train"] == pytest.approx(train_curve[-1], abs=1e-5)
        assert sorted(rec["train"] + rec["test"]) == list(range(n))
    stats = crossval.paired_stats(
        [json.loads(f.read_text())["full_test"] for f in sorted((out / "folds").iterdir())],
        [json.loads(f.read_text())["retained_test"] for f in sorted((out / "folds").iterdir())])
    assert info["t"] == pytest.approx(stats["t"]) and info["p"] == pytest.approx(stats["p"])


def test_ais_correlations_match_scipy():
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3, 512))
    rows = [{"model": "ecoset", "dataset": name, "global_ais": v}
            for name, v in zip(("fruits", "vegetables", "animals"), vecs, strict=True)]
    table = aim1.ais_correlations(rows)
    assert [(c["a"], c["b"]) for c in table] == [("fruits", "vegetables"), ("fruits", "animals"),
                                                 ("vegetables", "animals")]
    assert table[0]["r"] == pytest.approx(scipy.stats.pearsonr(vecs[0], vecs[1]).statistic)
    assert table[0]["paper_r"] == 0.26 and table[1]["paper_r"] is None


def test_figure1_has_one_bar_per_condition_and_the_set_sizes():
    rows = [{"model": m, "dataset": d, "mean_full": 0.3, "mean_retained": 0.4,
             "se_paired": 0.02, "mean_set_size": 300 + i}
            for i, (m, d) in enumerate([(m, d) for m in ("imagenet", "ecoset")
                                        for d in ("Animals", "Fruits")])]
    fig = figures.figure1(rows)
    ax = fig.axes[0]
    assert len(ax.patches) == 8
    assert [t.get_text() for t in ax.texts] == ["300", "301", "302", "303"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Animals", "Fruits"]
    figures.plt.close(fig)


# --- bad input: a clear error, and nothing written --------------------------------------------


@pytest.fixture
def plain_data(tmp_path):
    images = tmp_path / "images"
    aim1_demo.write_images(images, 10, 32, np.random.default_rng(0))
    matrix = np.corrcoef(np.random.default_rng(1).standard_normal((10, 20)))
    np.save(tmp_path / "sim.npy", matrix)
    return images, tmp_path / "sim.npy", matrix


def _plain_config(images, matrix_path, out, **kw):
    return aim1.Aim1Config(out=str(out), data_dir=str(images), matrix=str(matrix_path),
                           kind="similarity", models=(("ecoset", "ecoset"),), folds=2, **kw)


def test_mismatched_matrix_size_fails_cleanly(plain_data, tmp_path):
    images, path, matrix = plain_data
    np.save(path, np.eye(11))
    with pytest.raises(ValueError, match="sim.npy"):
        aim1.run_aim1(_plain_config(images, path, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_nan_in_matrix_fails_cleanly(plain_data, tmp_path):
    images, path, matrix = plain_data
    matrix[2, 3] = matrix[3, 2] = np.nan
    np.save(path, matrix)
    with pytest.raises(ValueError, match="sim.npy"):
        aim1.run_aim1(_plain_config(images, path, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_unreadable_image_fails_cleanly(plain_data, tmp_path):
    images, path, _ = plain_data
    (images / "img_004.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="img_004.png"):
        aim1.run_aim1(_plain_config(images, path, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_missing_category_lists_what_exists(tmp_path):
    (tmp_path / "peterson" / "animals" / "images").mkdir(parents=True)
    config = aim1.Aim1Config(out=str(tmp_path / "out"), data_dir=str(tmp_path / "peterson"),
                             datasets=("fruits",), models=(("ecoset", "ecoset"),))
    with pytest.raises(FileNotFoundError, match=r"fruits(.|\n)*animals"):
        aim1.run_aim1(config)
    assert not (tmp_path / "out").exists()


def test_missing_data_dir_fails_cleanly(tmp_path):
    config = aim1.Aim1Config(out=str(tmp_path / "out"), data_dir=str(tmp_path / "nowhere"),
                             models=(("ecoset", "ecoset"),))
    with pytest.raises(FileNotFoundError, match="nowhere(.|\n)*sim_judgements"):
        aim1.run_aim1(config)
    assert not (tmp_path / "out").exists()


def test_missing_weights_fail_cleanly_with_the_commands(plain_data, tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "empty_cache"))
    images, path, _ = plain_data
    with pytest.raises(MissingWeightsError, match="weights_convert --model=ecoset"):
        aim1.run_aim1(_plain_config(images, path, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
