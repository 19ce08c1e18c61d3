"""Train-only greedy curves (issue #21): S*, Full, Retained and t do not depend on --test_curves.

By default a fold computes the training curve on its training images alone and scores its test
images at S* and at all maps only (`ais_jax.engine.selection.point_scores`); ``--test_curves``
also computes the whole test curve. Both must write the same numbers.
"""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from absl import flags
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.engine import ablation, ais, selection
from ais_jax.models.vgg16 import pool_blocks
from experiments import aim1 as aim1_cli

N = 24
TEST = np.array([2, 5, 7, 10, 13, 14, 19, 22])
TRAIN = np.setdiff1d(np.arange(N), TEST)


@pytest.fixture(scope="module")
def problem():
    params, acts, human = ref.synthetic_problem(1, n=N, hw=(9, 9), maps=32)
    blocks = pool_blocks(jnp.asarray(acts))
    sims = ablation.ablation_similarities(params, blocks)
    order = selection.rank_maps(np.asarray(ais.global_ais(sims, human, images=TRAIN)))
    return params, human, blocks, order, acts


@pytest.mark.parametrize("fc7_path", ["plain", "active"])
def test_train_curve_and_test_scores_do_not_depend_on_the_test_curve(problem, fc7_path):
    params, human, blocks, order, acts = problem
    kw = dict(train=TRAIN, test=TEST, fc7_path=fc7_path)
    with_curve = selection.greedy_curves(params, blocks, order, human, test_curve=True, **kw)
    without = selection.greedy_curves(params, blocks, order, human, test_curve=False, **kw)
    # The same computation on the same training images: bit for bit.
    np.testing.assert_array_equal(with_curve.train_curve, without.train_curve)
    assert with_curve.best_size == without.best_size
    assert (with_curve.test_best, with_curve.test_full) == (without.test_best, without.test_full)
    assert without.test_curve is None and without.n_nan_test is None
    # The point scores (a masked head pass over the test images) against the incremental test
    # curve at S* and at all maps: different float32 summation orders (prefix sums + shifted
    # grams vs one masked product + a centred correlation), so round-off, not bit equality.
    curve = with_curve.test_curve
    assert without.test_best == pytest.approx(curve[without.best_size - 1], abs=1e-7)
    assert without.test_full == pytest.approx(curve[-1], abs=1e-7)
    # ... and against the float64 NumPy loop of SPEC §4.
    want = ref.greedy_curve(ref.head_params64(params), acts.astype(np.float64), order, human,
                            TEST)
    np.testing.assert_allclose([without.test_best, without.test_full],
                               want[[without.best_size - 1, -1]], rtol=0, atol=1e-6)


def test_point_scores_are_nan_where_undefined(problem):
    params, human, blocks, order, acts = problem
    blocks = np.array(blocks)
    blocks[:, order[0]] = 0  # the best-ranked map is zero everywhere: prefix 1 undefined
    got = selection.point_scores(params, jnp.asarray(blocks), order, human, TEST,
                                 np.array([1, 2, len(order)]), score="r2")
    assert np.isnan(got[0]) and not np.isnan(got[1:]).any()


def test_greedy_fc7_path_is_decided_once_per_head(problem):
    params, _, blocks, _, _ = problem
    path, fraction = selection.greedy_fc7_path(params, blocks, "plain")
    assert path == "plain" and fraction == pytest.approx(
        ablation.fc6_active_fraction(params, blocks))
    assert selection.greedy_fc7_path(params, blocks, "active")[0] == "active"
    with pytest.raises(ValueError, match="fc7 path"):
        selection.greedy_fc7_path(params, blocks, "fast")


def _cli(*args: str) -> int:
    try:
        return aim1_cli.main(flags.FLAGS(["aim1", *args]))
    finally:
        flags.FLAGS.unparse_flags()


FOLD_KEYS = ("set_size", "order", "train_curve", "full_test", "full_train", "retained_test",
             "retained_train", "ais_train", "fc7_path")


def test_cli_numbers_identical_with_and_without_test_curves(tmp_path_factory, tmp_path,
                                                            monkeypatch):
    demo = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    data = Path(demo["out"]) / "demo_data"
    common = [f"--data_dir={data / 'images'}", f"--matrix={data / 'similarity.npy'}",
              "--kind=similarity", "--name=synthetic", "--model=ecoset",
              f"--weights={demo['checkpoint']}", f"--folds={SMALL_DEMO['folds']}",
              "--seeds=111", "--noreport"]
    outs = {flag: tmp_path / flag.strip("-") for flag in ("--test_curves", "--notest_curves")}
    for flag, out in outs.items():
        assert _cli(*common, flag, f"--out={out}") == 0
    folds = {flag: sorted((out / "ecoset" / "synthetic" / "folds").iterdir())
             for flag, out in outs.items()}
    assert [p.name for p in folds["--test_curves"]] == [p.name for p in folds["--notest_curves"]]
    for a, b in zip(folds["--test_curves"], folds["--notest_curves"], strict=True):
        with_curve, without = json.loads(a.read_text()), json.loads(b.read_text())
        assert {k: with_curve[k] for k in FOLD_KEYS} == {k: without[k] for k in FOLD_KEYS}
        assert with_curve["test_curves"] and len(with_curve["test_curve"]) == 512
        assert not without["test_curves"] and without["test_curve"] is None
    results = {flag: json.loads((out / "results.json").read_text())["rows"]
               for flag, out in outs.items()}
    assert results["--test_curves"] == results["--notest_curves"]
    run = json.loads((outs["--notest_curves"] / "run.json").read_text())
    assert run["config"]["test_curves"] is False
    decision = run["greedy_fc7_path"]["ecoset/synthetic"]
    assert decision["fc7_path"] in ("active", "plain") and 0 < decision["fc6_active_fraction"] < 1
