"""Aim 3 end to end on the study runner: outputs, resume, Aim 2 reuse, clean failures, (H, W)."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import storage
from ais_jax.explain import heatmaps as hm
from ais_jax.explain import saliency
from ais_jax.report import aim3_figures
from ais_jax.study import aim2, aim3, aim3_demo

REPO = Path(__file__).resolve().parents[1]


def _config(result: dict, out: Path, sal_dir: Path, **kw) -> aim3.Aim3Config:
    data = Path(result["out"]) / "demo_data"
    return aim3.Aim3Config(**{
        "out": str(out), "data_dir": str(data / "images"),
        "matrix": str(data / "similarity.npy"), "kind": "similarity", "name": "synthetic",
        "models": (("synthetic", str(result["checkpoint"])),),
        "image_size": SMALL_DEMO["image_size"], "batch_size": SMALL_DEMO["batch_size"],
        "saliency_dir": str(sal_dir), "examples": 3, **kw})


def _write_saliency(result: dict, folder: Path) -> list[str]:
    """Random smooth-ish maps, one .npy per image (as experiments.saliency names them)."""
    images = sorted((Path(result["out"]) / "demo_data" / "images").iterdir())
    rng = np.random.default_rng(0)
    for p in images:
        h, w = np.asarray(saliency.image_io.open_rgb(p)).shape[:2]
        storage.write_npy(folder / f"{p.stem}.npy", rng.random((h, w)).astype(np.float32))
    return [p.stem for p in images]


@pytest.fixture
def demo_env(tmp_path_factory, tmp_path, monkeypatch):
    result = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(result["cache"]))  # activations/ablations: hits
    sal_dir = tmp_path / "saliency"
    stems = _write_saliency(result, sal_dir)
    return result, sal_dir, stems


def test_run_writes_tables_figures_and_resumes(demo_env, tmp_path):
    result, sal_dir, stems = demo_env
    out = tmp_path / "aim3"
    first = aim3.run_aim3(_config(result, out, sal_dir, per_image_figures=True))
    for name in ("summary.md", "table1.csv", "table1.json", "metrics.csv", "metrics.json",
                 "baseline_tests.csv", "run.json", "figure4_synthetic.png"):
        assert (out / name).is_file(), name
    item = out / "synthetic" / "synthetic"
    assert (item / "figure4.png").is_file()
    assert sorted(p.stem for p in (item / "figure4").iterdir()) == sorted(stems)
    with open(item / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * len(stems)  # AIS and two baselines per image
    assert {r["source"] for r in rows} == set(aim3.SOURCES)
    assert [r["image_id"] for r in rows if r["source"] == "ais"] == [f"{s}.png" for s in stems]
    mism = [r for r in rows if r["source"] == "mismatched"]
    assert all(r["partner_id"] and r["partner_id"] != r["image_id"] for r in mism)
    table = json.loads((out / "table1.json").read_text())
    assert [(r["dataset"], r["p"]) for r in table] == [
        (d, p) for d in ("synthetic", "all") for p in (5.0, 10.0, 15.0)]
    for r in table:  # every image is accounted for
        assert r["n"] == len(stems) == r["n_finite"] + r["n_inf"] + r["n_nan"]
    assert "31.9 ± 34.5" not in first["text"]  # not a Peterson category: no paper numbers
    assert "Table 1" in first["text"] and "centre_bias" in first["text"]
    # A rerun reads the record back and gives the same tables.
    again = aim3.run_aim3(_config(result, out, sal_dir, per_image_figures=True))
    assert again["rows"][0]["resumed"] and not first["rows"][0]["resumed"]
    assert json.loads((out / "table1.json").read_text()) == table
    np.testing.assert_array_equal(again["rows"][0]["results"]["ais"]["rr_10"],
                                  first["rows"][0]["results"]["ais"]["rr_10"])


def _aim2_run(result: dict, out: Path) -> dict:
    """A real Aim 2 run on the small demo's data and network (caches hit: cheap)."""
    data = Path(result["out"]) / "demo_data"
    return aim2.run_aim2(aim2.Aim2Config(
        out=str(out), data_dir=str(data / "images"), matrix=str(data / "similarity.npy"),
        kind="similarity", name="synthetic", models=(("synthetic", str(result["checkpoint"])),),
        image_size=SMALL_DEMO["image_size"], batch_size=SMALL_DEMO["batch_size"], overlays=0,
        full_maps="none"))


def test_reuses_aim2_heatmaps_only_from_the_same_inputs(demo_env, tmp_path):
    """Class 1 of #22: Aim 2's record names every input of its heatmaps; Aim 3 reuses them only
    when all are the same, refuses (naming what differs) otherwise, and a --aim2_dir that does
    not exist or is not an Aim 2 run is an error."""
    result, sal_dir, stems = demo_env
    aim2_out = tmp_path / "aim2"
    _aim2_run(result, aim2_out)
    computed = aim3.run_aim3(_config(result, tmp_path / "a", sal_dir))
    assert computed["rows"][0]["heatmaps"] == "computed"
    reused = aim3.run_aim3(_config(result, tmp_path / "b", sal_dir, aim2_dir=str(aim2_out)))
    assert reused["rows"][0]["heatmaps"] == "aim2"
    for key in ("rr_5", "rr_10", "cc", "kld"):
        np.testing.assert_array_equal(reused["rows"][0]["results"]["ais"][key],
                                      computed["rows"][0]["results"]["ais"][key])

    data = Path(result["out"]) / "demo_data"
    # Same file names, other bytes: one image re-saved with one pixel changed.
    images = tmp_path / "images"
    shutil.copytree(data / "images", images)
    first = sorted(images.iterdir())[0]
    pixels = np.asarray(saliency.image_io.open_rgb(first)).copy()
    pixels[0, 0] ^= 1
    PIL.Image.fromarray(pixels).save(first)
    with pytest.raises(ValueError, match=r"other inputs.*the images \(names and bytes\)") as e:
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(aim2_out),
                              data_dir=str(images)))
    assert "human matrix" not in str(e.value) and "--aim2_dir" in str(e.value)
    # Same images, another matrix (every per-image AIS depends on it); then --symmetrize.
    matrix = np.load(data / "similarity.npy")
    matrix[0, 1] = matrix[1, 0] = matrix[0, 1] + 0.01
    np.save(tmp_path / "other.npy", matrix)
    with pytest.raises(ValueError, match=r"the human matrix \(after --kind and --symmetrize\)"):
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(aim2_out),
                              matrix=str(tmp_path / "other.npy")))
    asym = np.load(data / "similarity.npy")
    asym[0, 1] += 0.02
    np.save(tmp_path / "asym.npy", asym)
    with pytest.raises(ValueError, match=r"--symmetrize \(False there, True now\)"):
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(aim2_out),
                              matrix=str(tmp_path / "asym.npy"), symmetrize=True))
    # No such folder; a folder that is not an Aim 2 run (Aim 3's own results).
    with pytest.raises(FileNotFoundError, match=r"--aim2_dir=.*gone: no such folder"):
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(tmp_path / "gone")))
    with pytest.raises(ValueError, match=r"--aim2_dir=.*holds the results of aim3, not an Aim 2"):
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(tmp_path / "a")))
    assert not (tmp_path / "c").exists()
    # Heatmaps without their record (an unfinished or older Aim 2) cannot be checked: refused.
    (aim2_out / "synthetic" / "synthetic" / "aim2.json").unlink()
    with pytest.raises(ValueError, match="without their record"):
        aim3.run_aim3(_config(result, tmp_path / "c", sal_dir, aim2_dir=str(aim2_out)))


def test_missing_or_swapped_maps_fail_before_writing(demo_env, tmp_path):
    result, sal_dir, stems = demo_env
    (sal_dir / f"{stems[0]}.npy").unlink()
    (sal_dir / f"{stems[1]}.npy").unlink()
    m = np.load(sal_dir / f"{stems[2]}.npy")
    np.save(sal_dir / f"{stems[2]}.npy", np.zeros((m.shape[0] + 1, m.shape[1])))
    out = tmp_path / "never"
    with pytest.raises(ValueError) as err:
        aim3.run_aim3(_config(result, out, sal_dir))
    msg = str(err.value)
    assert stems[0] in msg and stems[1] in msg and stems[2] in msg
    assert "python -m experiments.saliency --data_dir=" in msg and f"--out={sal_dir}" in msg
    assert not out.exists()
    # The command line: one error line, exit status 1, nothing written.
    data = Path(result["out"]) / "demo_data"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.aim3", f"--data_dir={data / 'images'}",
         f"--matrix={data / 'similarity.npy'}", "--kind=similarity",
         f"--saliency_dir={tmp_path / 'nothing'}",
         f"--weights={result['checkpoint']}", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "no such saliency-map folder" in proc.stderr and not out.exists()


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
def test_non_square_image_keeps_one_hw(shape):
    rng = np.random.default_rng(0)
    sal = saliency.postprocess(rng.random((288, 384)).astype(np.float32), shape)
    grid = rng.random((2, 14, 23) if shape[0] < shape[1] else (2, 23, 14)).astype(np.float32)
    heat = hm.upsample_each(grid, [shape, shape])
    assert sal.shape == heat[0].shape == shape
    results, partner = aim3.compare_sources(heat, [sal, sal[::-1].copy()], percents=(5, 10),
                                            centre_sd=0.25, seed=0)
    assert list(partner) == [1, 0]
    total = sum(results["centre_bias"][f"{k}_5"][0] for k in ("tp", "fn", "fp", "tn"))
    assert total == shape[0] * shape[1]
    fig = aim3_figures.contour_figure(np.zeros((*shape, 3), np.uint8), sal, heat[0],
                                      percents=(5, 10))
    try:
        ax = fig.axes[0]
        assert ax.get_xlim() == (-0.5, shape[1] - 0.5)
        assert ax.get_ylim() == (shape[0] - 0.5, -0.5)
    finally:
        aim3_figures.plt.close(fig)


def test_demo_saliency_coincides_or_not_and_rr_follows():
    """Planted truth without networks: a heatmap peaked on the rectangle gets a high RR where
    the synthetic saliency covers the rectangle and about chance where it is a distractor."""
    rng = np.random.default_rng(0)
    n, shape = 40, (64, 96)
    masks = np.zeros((n, *shape), bool)
    for m in masks:
        top, left = rng.integers(0, 40), rng.integers(0, 60)
        m[top:top + 20, left:left + 30] = True
    coincide = np.arange(n) % 2 == 0
    sal = aim3_demo.synthetic_saliency(masks, coincide, np.random.default_rng(1))
    again = aim3_demo.synthetic_saliency(masks, coincide, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(sal, again, strict=True))  # seeded
    for s, m, c in zip(sal, masks, coincide, strict=True):
        assert s.shape == shape and s.dtype == np.float32
        peak = np.unravel_index(np.argmax(s), shape)
        if c:
            assert m[peak]
    heat = [m.astype(np.float64) + 0.3 * rng.random(shape) for m in masks]
    results, _ = aim3.compare_sources(heat, sal, percents=(10,), centre_sd=0.25, seed=0)
    rows = aim3_demo.group_summary(results, coincide, (10,))
    rr = {(r["group"], r["source"]): r for r in rows if r["metric"] == "rr_10"}
    assert rr[("coinciding", "ais")]["median"] > 5
    assert rr[("distractor", "ais")]["median"] < 1.5
    assert rr[("coinciding", "ais")]["median"] > 3 * rr[("coinciding", "mismatched")]["median"]
    tests = aim3_demo.group_tests(results, coincide, (10,))
    t = next(x for x in tests if x["group"] == "coinciding" and x["baseline"] == "mismatched"
             and x["metric"] == "rr_10")
    assert t["p"] < 0.01 and t["ais_better"] >= 15
