"""Greedy, soft mask and reweighting on the same Aim 1 folds: records, rows, Figure 1, resume."""

import csv
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.fitting import compare, softmask
from ais_jax.models import registry
from ais_jax.report import figures
from ais_jax.study import aim1, aim1_demo

ALL = ("greedy", "softmask", "reweight")


def test_check_methods():
    assert compare.check_methods(["reweight", "greedy"]) == ("greedy", "reweight")
    with pytest.raises(ValueError, match="unknown lasso"):
        compare.check_methods(["greedy", "lasso"])
    with pytest.raises(ValueError, match="repeats"):
        compare.check_methods(["greedy", "greedy"])
    with pytest.raises(ValueError, match="must include greedy"):
        compare.check_methods(["softmask"])
    cfg = aim1.Aim1Config(out="x", data_dir="y", models=(("ecoset", "ecoset"),),
                          methods=("softmask",))
    with pytest.raises(ValueError, match="--methods must include greedy"):
        cfg.validate()


def _fake_records(rng, n=6):
    recs = []
    for _ in range(n):
        full, greedy = rng.uniform(0.2, 0.4), rng.uniform(0.3, 0.5)
        recs.append({
            "full_test": full, "retained_test": greedy, "full_train": 0.3,
            "softmask": {"test_soft": rng.uniform(0.3, 0.5), "test_hard": rng.uniform(0.3, 0.5),
                         "train_soft": 0.5, "train_hard": 0.45, "hard_size": int(rng.integers(
                             50, 200)), "overlap_greedy": 30, "seconds": 2.0},
            "reweight": {"test_score": rng.uniform(0.3, 0.6), "train_score": 0.7,
                         "seconds": 1.0},
        })
    return recs


def test_method_rows_are_paired_tests_against_full_and_greedy():
    recs = _fake_records(np.random.default_rng(0))
    rows = compare.method_rows(recs, ALL)
    assert [r["method"] for r in rows] == ["softmask", "softmask_hard", "reweight"]
    full = np.array([r["full_test"] for r in recs])
    greedy = np.array([r["retained_test"] for r in recs])
    for row, key in zip(rows, (("softmask", "test_soft"), ("softmask", "test_hard"),
                               ("reweight", "test_score")), strict=True):
        x = np.array([r[key[0]][key[1]] for r in recs])
        assert row["mean_test"] == pytest.approx(x.mean())
        assert row["t"] == pytest.approx(scipy.stats.ttest_rel(x, full).statistic)
        assert row["t_vs_greedy"] == pytest.approx(scipy.stats.ttest_rel(x, greedy).statistic)
        assert row["p_vs_greedy"] == pytest.approx(scipy.stats.ttest_rel(x, greedy).pvalue)
        assert row["se_paired_vs_greedy"] == pytest.approx(
            np.std(x - greedy, ddof=1) / np.sqrt(2 * len(recs)))
    assert rows[2]["mean_set_size"] is None and rows[0]["mean_overlap_greedy"] == 30


def test_figure1_draws_one_hatched_bar_per_extra_method():
    rows = [{"model": "ecoset", "dataset": d, "mean_full": 0.3, "mean_retained": 0.4,
             "se_paired": 0.02, "mean_set_size": 300} for d in ("Animals", "Fruits")]
    extra = [{"model": "ecoset", "dataset": d, "method": m, "mean_test": 0.35, "se_paired": 0.01}
             for d in ("Animals", "Fruits") for m in ("softmask", "reweight")]
    fig = figures.figure1(rows, extra_rows=extra)
    patches = fig.axes[0].patches
    assert len(patches) == 8
    assert [p.get_hatch() for p in patches].count("//") == 2
    assert [p.get_hatch() for p in patches].count("..") == 2
    figures.plt.close(fig)


def _config(result, out, **kw):
    data = Path(result["out"]) / "demo_data"
    return aim1.Aim1Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=(("synthetic", str(result["checkpoint"])),),
        folds=SMALL_DEMO["folds"], seeds=SMALL_DEMO["seeds"],
        image_size=SMALL_DEMO["image_size"], batch_size=SMALL_DEMO["batch_size"],
        **{"test_curves": True, **kw})  # the demo's folds keep their test curves: reused as is


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    """Aim 1 with all three methods on the small demo's data (short soft-mask fits)."""
    first = small_demo_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("methods")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(storage.CACHE_ENV, str(first["cache"]))
        # The pipeline, not the optimiser's convergence, is under test here.
        mp.setattr(compare.softmask, "fit_softmask", functools.partial(
            softmask.fit_softmask, lambdas=(0.0, 0.1), path_steps=3, final_steps=3,
            patience=3))
        # The plain (greedy) run's finished folds, as if it had run here; the extra methods
        # are then added to them.
        shutil.copytree(Path(first["out"]) / "synthetic" / "synthetic" / "folds",
                        out / "run" / "synthetic" / "synthetic" / "folds")
        plain = {p.name: json.loads(p.read_text())
                 for p in (out / "run" / "synthetic" / "synthetic" / "folds").iterdir()}
        result = aim1.run_aim1(_config(first, out / "run", methods=ALL))
    return first, out / "run", plain, result


def test_methods_are_added_to_the_same_folds(methods_run):
    first, out, plain, result = methods_run
    folds = out / "synthetic" / "synthetic" / "folds"
    assert result["rows"][0]["folds_resumed"] == SMALL_DEMO["folds"]
    for path in sorted(folds.iterdir()):
        rec = json.loads(path.read_text())
        greedy_part = {k: v for k, v in rec.items() if k not in ALL}
        assert greedy_part == plain[path.name]  # greedy numbers untouched
        test, train = set(rec["test"]), set(rec["train"])
        sm, rw = rec["softmask"], rec["reweight"]
        assert set(sm["inner_fit"]) | set(sm["inner_val"]) == train
        assert not (set(sm["inner_fit"]) | set(sm["inner_val"])) & test
        assert set().union(*map(set, rw["inner_val"])) == train
        assert len(sm["mask"]) == 512 and sm["hard_size"] == len(sm["hard_set"])
        s_star = set(rec["order"][: rec["set_size"]])
        assert sm["overlap_greedy"] == len(s_star & set(sm["hard_set"]))
        assert sm["lambda"] in (0.0, 0.1) and rw["relative_alpha"] > 0
        assert sm["seconds"] > 0 and rw["seconds"] > 0


def test_results_have_one_row_per_method_and_the_summary_a_table(methods_run):
    _, out, _, result = methods_run
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["greedy", "softmask", "softmask_hard", "reweight"]
    assert len({r["mean_full"] for r in rows}) == 1  # the same folds' Full
    assert float(rows[0]["mean_test"]) == pytest.approx(float(rows[0]["mean_retained"]))
    data = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in data["rows"]] == [r["method"] for r in rows]
    assert "Beyond the paper" in (out / "summary.md").read_text()
    assert (out / "figure1.png").stat().st_size > 0


def test_rerun_reuses_every_method(methods_run, monkeypatch):
    first, out, _, result = methods_run
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))

    def fail(*a, **k):
        raise AssertionError("a finished fold was refitted")

    monkeypatch.setattr(compare.softmask, "fit_softmask", fail)
    monkeypatch.setattr(compare.reweight, "fit_reweight", fail)
    before = (out / "results.csv").read_text()
    aim1.run_aim1(_config(first, out, methods=ALL))
    assert (out / "results.csv").read_text() == before


def test_demo_fold_recovery_reports_greedy_beside_the_soft_mask(methods_run):
    first, out, _, _ = methods_run
    records = [json.loads(p.read_text())
               for p in sorted((out / "synthetic" / "synthetic" / "folds").iterdir())]
    maps = registry.architecture(aim1_demo.DEFAULT_MODEL).maps
    rec = aim1_demo.fold_recovery(records, np.asarray(first["planted"]), ALL, maps)
    for method in ("greedy", "softmask"):
        assert 0 <= rec[method]["auc"] <= 1 and 0 <= rec[method]["overlap"] <= 1
    want = np.mean([aim1_demo.recovery(np.array(r["softmask"]["mask"]), first["planted"])["auc"]
                    for r in records])
    assert rec["softmask"]["auc"] == pytest.approx(want)
