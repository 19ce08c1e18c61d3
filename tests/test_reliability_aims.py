"""Issue #22 (bad input, third pass) on Aim 2, Aim 3, experiments.saliency and the demos.

One test (or a few) per class of the issue: 2 (--saliency_dir holding the images), 3 (no stale
per-item files after a rerun), 4 (two aims in one --out), 5 (malformed map files), 6 (messages
that name the culprit, flags checked before anything is written), 7 (--demo refuses the flags it
does not use and honours the others), 8 (float64 maps as given, KLD of negative maps, images
decoded before any saliency map is written). Class 1 (Aim 3's reuse of Aim 2's heatmaps) is
`tests/test_aim3.py::test_reuses_aim2_heatmaps_only_from_the_same_inputs`.

Aim 3's command line is run in a child process (its flags and Aim 2's share names, so both
cannot be defined in one process): one process runs several command lines through
``experiments.aim3.main`` (absl's parser and the entry point, as ``python -m``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from absl import flags
from aim1_fixtures import SMALL_DEMO, small_demo_run

from ais_jax import preflight, resume, storage
from ais_jax.explain import compare, saliency
from ais_jax.study import aim1_demo, aim2, aim2_demo, aim3, aim3_demo
from experiments import aim1 as aim1_cli
from experiments import aim2 as aim2_cli

REPO = Path(__file__).resolve().parents[1]

AIM3_SCRIPT = """
import contextlib, io, json, sys
from absl import flags
from experiments import aim3
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = aim3.main(flags.FLAGS(["aim3", *argv]))
        finally:
            flags.FLAGS.unparse_flags()
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _aim3_cli(*argvs: list[str], cache: Path) -> list[tuple[int, str]]:
    """Each ``python -m experiments.aim3 ARGS`` of ``argvs``, in one child process."""
    proc = subprocess.run([sys.executable, "-c", AIM3_SCRIPT, json.dumps(list(argvs))],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "JAX_PLATFORMS": "cpu",
                               storage.CACHE_ENV: str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


def _write_npz(path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, heat=np.zeros((2, 2)))


def _run(capsys, cli, *args: str) -> tuple[int, str]:
    """``python -m experiments.<cli> ARGS`` in this process: (exit code, stderr)."""
    try:
        code = cli.main(flags.FLAGS(["aim", *args]))
    finally:
        flags.FLAGS.unparse_flags()
    return code, capsys.readouterr().err


def _one_error(err: str, *needles: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(tmp_path_factory, tmp_path, monkeypatch):
    """The small demo's data and network (caches hit), and one saliency map per image."""
    result = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(result["cache"]))
    data = Path(result["out"]) / "demo_data"
    sal = tmp_path / "saliency"
    _write_saliency(data / "images", sal, seed=0)
    common = [f"--data_dir={data / 'images'}", f"--matrix={data / 'similarity.npy'}",
              "--kind=similarity", f"--weights={result['checkpoint']}",
              f"--batch_size={SMALL_DEMO['batch_size']}"]
    return result, data, sal, common


def _write_saliency(images: Path, folder: Path, seed: int, scale: float = 1.0,
                    shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    for p in sorted(images.iterdir()):
        h, w = np.asarray(saliency.image_io.open_rgb(p)).shape[:2]
        storage.write_npy(folder / f"{p.stem}.npy",
                          (scale * rng.random((h, w)) + shift).astype(np.float32))


def _config(cls, result, data, out, **kw):
    return cls(**{"out": str(out), "data_dir": str(data / "images"),
                  "matrix": str(data / "similarity.npy"), "kind": "similarity",
                  "name": "synthetic", "models": (("synthetic", str(result["checkpoint"])),),
                  "image_size": SMALL_DEMO["image_size"],
                  "batch_size": SMALL_DEMO["batch_size"], **kw})


# ---------------------------------------------------------------------------------------------
# Classes 2, 4, 5, 6 and 7 of Aim 3 on the command line (one child process).


def test_aim3_command_line_refuses_by_name(env, tmp_path):
    result, data, sal, common = env
    images = data / "images"
    stems = sorted(p.stem for p in images.iterdir())
    copies = tmp_path / "copies"  # class 2: the images themselves as --saliency_dir
    shutil.copytree(images, copies)
    bad = {}  # class 5: malformed map files, one folder each
    for name, write in {
        "empty": lambda p: p.write_bytes(b""),
        "npz": _write_npz,
        "html": lambda p: p.write_text("<!DOCTYPE html><html>sign in</html>"),
    }.items():
        folder = tmp_path / f"bad_{name}"
        shutil.copytree(sal, folder)
        write(folder / f"{stems[0]}.npy")
        bad[name] = folder
    jpg = tmp_path / "bad_jpg"  # class 6: a map in a format not read
    shutil.copytree(sal, jpg)
    (jpg / f"{stems[1]}.npy").unlink()
    PIL.Image.new("L", (4, 4)).save(jpg / f"{stems[1]}.jpg")
    aim2_like = tmp_path / "aim2_results"  # class 4: another aim's results in --out
    aim2_like.mkdir()
    (aim2_like / "run.json").write_text(json.dumps({"aim": "aim2", "config": {}}))
    out = tmp_path / "out"
    runs = _aim3_cli(
        [*common, f"--saliency_dir={images}", f"--out={out}"],
        [*common, f"--saliency_dir={copies}", f"--out={out}"],
        *[[*common, f"--saliency_dir={bad[k]}", f"--out={out}"] for k in ("empty", "npz", "html")],
        [*common, f"--saliency_dir={jpg}", f"--out={out}"],
        [*common, f"--saliency_dir={sal}", "--mismatch_seed=-1", f"--out={out}"],
        [*common, f"--saliency_dir={sal}", f"--aim2_dir={tmp_path / 'nope'}", f"--out={out}"],
        [*common, f"--saliency_dir={sal}", f"--out={aim2_like}"],
        ["--demo", f"--saliency_dir={sal}", f"--aim2_dir={aim2_like}", "--model=imagenet",
         f"--out={out}"],
        ["--demo", "--percents=5,200", f"--out={out}"],
        ["--demo_images=9", *common, f"--saliency_dir={sal}", f"--out={out}"],
        cache=result["cache"])
    expect = [
        (1, ["--saliency_dir", f"{images} is the image folder of dataset images"]),
        (1, ["--saliency_dir", "holds the images of dataset images themselves",
             f"{len(stems)} file(s)"]),
        (1, [f"{stems[0]}.npy", "cannot read a saliency map (.npy)", "an empty file"]),
        (1, [f"{stems[0]}.npy", "looks like a zip archive (a NumPy .npz?)"]),
        (1, [f"{stems[0]}.npy", "looks like HTML"]),
        (1, [f"{stems[1]}.png (found {stems[1]}.jpg: a format not read)", "<image stem>.npy",
             "<image stem>.png (greyscale"]),
        (1, ["--mismatch_seed must be a non-negative integer", "-1"]),
        (1, [f"--aim2_dir={tmp_path / 'nope'}: no such folder"]),
        (2, [f"--out={aim2_like} holds the results of aim2", "aim3 would overwrite them"]),
        (2, ["--saliency_dir --aim2_dir", "--model", "not used by this run",
             "the demo makes its own data"]),
        (1, ["--percents must be percentages in (0, 100)"]),
        (2, ["--demo_images: not used by this run", "--demo only"]),
    ]
    assert len(runs) == len(expect)
    for (code, err), (want, needles) in zip(runs, expect, strict=True):
        assert code == want, err[-2000:]
        _one_error(err, *needles)
    assert not out.exists()  # nothing written by any of them
    assert sorted(os.listdir(aim2_like)) == ["run.json"]


# ---------------------------------------------------------------------------------------------
# Class 3: every per-item output belongs to the run that wrote the tables. Class 4 (library).


def test_reruns_leave_no_stale_per_item_files(env, tmp_path):
    result, data, sal, _ = env
    out = tmp_path / "aim3"
    run = _config(aim3.Aim3Config, result, data, out, saliency_dir=str(sal), examples=2,
                  per_image_figures=True)
    aim3.run_aim3(run)
    figures = out / "synthetic" / "synthetic" / "figure4"
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    (figures / "zzz_gone_image.png").write_bytes(b"stale")
    (out / "figure4_old_model.png").write_bytes(b"stale")
    # New saliency maps (negative ones: class 8's KLD shift is stated in the summary).
    _write_saliency(data / "images", sal, seed=1, scale=2.0, shift=-1.0)
    again = aim3.run_aim3(run)
    after = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert sorted(after) == sorted(before)  # the stale figure is gone, every image has one...
    assert all(after[k] != before[k] for k in before)  # ...drawn from the new maps
    assert not (out / "figure4_old_model.png").exists()
    n = len(before)
    assert f"synthetic / synthetic / ais: {n}" in again["text"]
    assert "shifted to a minimum of 0 first" in again["text"]
    kld = again["rows"][0]["results"]["ais"]["kld"]
    assert np.isfinite(kld).all()
    # Not asked for any more: removed, not left looking current.
    aim3.run_aim3(dataclass_replace(run, per_image_figures=False))
    assert not figures.exists()

    # Aim 2: overlays, full-size maps and per-dataset files of an earlier run.
    out2 = tmp_path / "aim2"
    cfg2 = _config(aim2.Aim2Config, result, data, out2, overlays=None, full_maps="all")
    aim2.run_aim2(cfg2)
    item = out2 / "synthetic" / "synthetic"
    assert len(list((item / "heatmaps_full").iterdir())) == n
    (item / "overlays" / "zzz_gone_image.png").write_bytes(b"stale")
    (out2 / "figure2_gone_dataset.png").write_bytes(b"stale")
    (out2 / "match_gone_dataset.csv").write_text("stale")
    matrix = np.load(data / "similarity.npy")
    matrix[0, 1] = matrix[1, 0] = matrix[0, 1] + 0.05
    np.save(tmp_path / "corrected.npy", matrix)
    aim2.run_aim2(dataclass_replace(cfg2, matrix=str(tmp_path / "corrected.npy"),
                                    full_maps="examples", overlays=3))
    assert len(list((item / "overlays").iterdir())) == 3
    assert len(list((item / "heatmaps_full").iterdir())) == 3  # Figure 2's 3 examples only
    assert not (out2 / "figure2_gone_dataset.png").exists()
    assert not (out2 / "match_gone_dataset.csv").exists()
    record = json.loads((item / "aim2.json").read_text())  # the inputs Aim 3 will compare
    assert record["heatmap_inputs"]["matrix_sha256"] == resume.digest(matrix)

    # Class 4: one aim into the other's --out is refused before anything is written.
    with pytest.raises(preflight.UsageError, match=r"holds the results of aim2.*aim3 would"):
        aim3.run_aim3(dataclass_replace(run, out=str(out2)))
    with pytest.raises(preflight.UsageError, match=r"holds the results of aim3.*aim2 would"):
        aim2.run_aim2(dataclass_replace(cfg2, out=str(out)))
    assert json.loads((out / "run.json").read_text())["aim"] == "aim3"
    assert json.loads((out2 / "run.json").read_text())["aim"] == "aim2"


def dataclass_replace(cfg, **kw):
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(cfg, **kw)


# ---------------------------------------------------------------------------------------------
# Classes 5 and 6 in the library: every user file a run reads.


def test_malformed_files_are_one_error_naming_the_file(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "arch.npz", a=np.zeros(3))
    (tmp_path / "arch.npz").rename(tmp_path / "arch.npy")
    PIL.Image.new("RGB", (4, 4)).save(tmp_path / "photo.png", format="JPEG")
    png = tmp_path / "cut.png"
    PIL.Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png)
    png.write_bytes(png.read_bytes()[:40])
    (tmp_path / "text.npy").write_text("0.1, 0.2\n")
    for name, needle in (("empty.npy", "an empty file"),
                         ("arch.npy", "a zip archive (a NumPy .npz?)"),
                         ("photo.png", "a JPEG image named .png"),
                         ("cut.png", "looks like a PNG image"),
                         ("text.npy", "looks like text")):
        with pytest.raises(ValueError) as e:
            saliency.read_map(tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name}: ") and needle in str(e.value)
    # A damaged manifest (saliency's image_ids.json, Aim 2's record) names its file.
    (tmp_path / "image_ids.json").write_text('{"image_ids": ["a", ')
    with pytest.raises(ValueError, match=r"image_ids.json: cannot read a saliency manifest: "
                                         r"it looks like JSON text \(JSONDecodeError"):
        saliency.read_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"image_ids.json: cannot read"):
        saliency.write_saliency_maps(_one_image(tmp_path / "imgs"), tmp_path, {},
                                     weights_sha256="x")


def _one_image(folder: Path) -> Path:
    folder.mkdir()
    PIL.Image.new("RGB", (8, 6)).save(folder / "a.png")
    return folder


# ---------------------------------------------------------------------------------------------
# Class 7: --demo (Aim 1, Aim 2) honours the flags that make sense and refuses the others.


def test_demo_flags_honoured_or_refused(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake(name):
        def run(cfg):
            seen[name] = cfg
            return {"text": "", "out": Path(cfg.out)}
        return run

    monkeypatch.setattr(aim1_demo, "run_demo", fake("aim1"))
    monkeypatch.setattr(aim2_demo, "run_demo", fake("aim2"))
    out = tmp_path / "out"
    code, err = _run(capsys, aim1_cli, "--demo", "--rsatoolbox", "--score=rho", "--folds=3",
                     "--seeds=1,2", "--methods=greedy,softmask", f"--out={out}")
    assert code == 0, err
    cfg = seen["aim1"]
    assert (cfg.score, cfg.rsatoolbox, cfg.folds, cfg.seeds, cfg.methods) == (
        "rho", True, 3, (1, 2), ("greedy", "softmask"))
    code, err = _run(capsys, aim1_cli, "--demo", f"--out={out}")  # the demo's own defaults
    assert code == 0, err
    assert (seen["aim1"].score, seen["aim1"].folds, seen["aim1"].seeds) == ("r2", 5, (111,))
    code, err = _run(capsys, aim2_cli, "--demo", "--rsatoolbox", "--overlays=3",
                     "--colormap=viridis", "--chunk_maps=64", f"--out={out}")
    assert code == 0, err
    cfg = seen["aim2"]
    assert cfg.rsatoolbox and cfg.chunk_maps == 64
    assert (cfg.settings["overlays"], cfg.settings["colormap"]) == (3, "viridis")
    seen.clear()
    for cli, args, needles in (
        (aim1_cli, ["--demo", "--model=imagenet", "--weights=w.safetensors", "--kind=similarity",
                    "--matrix=m.npy", "--data_dir=d"],
         ["--model --weights --data_dir --matrix --kind: not used by this run"]),
        (aim1_cli, ["--demo", "--folds=30"], ["--folds=30", "60 images"]),
        (aim1_cli, ["--demo_planted=8", "--data_dir=d"], ["--demo_planted: not used"]),
        (aim2_cli, ["--demo", "--symmetrize", "--datasets=animals"],
         ["--datasets --symmetrize: not used by this run"]),
    ):
        code, err = _run(capsys, cli, *args, f"--out={out}")
        assert code in (1, 2), err
        _one_error(err, *needles)
    assert not seen and not out.exists()


def test_demo_settings_checked_before_anything_is_written(tmp_path):
    out = tmp_path / "demo"
    for cfg, needle in ((aim3_demo.Aim3DemoConfig(out=str(out), mismatch_seed=-2),
                         "--mismatch_seed"),
                        (aim3_demo.Aim3DemoConfig(out=str(out), examples=0), "--examples"),
                        (aim3_demo.Aim3DemoConfig(out=str(out), n_images=4), "--demo_images")):
        with pytest.raises(ValueError, match=needle):
            aim3_demo.run_demo(cfg)
    with pytest.raises(ValueError, match="--image_weight"):
        aim2_demo.run_demo(aim2_demo.DemoConfig(out=str(out), settings={"image_weight": 2.0}))
    with pytest.raises(ValueError, match="--colormap: unknown matplotlib colormap"):
        aim2_demo.run_demo(aim2_demo.DemoConfig(out=str(out), settings={"colormap": "nope"}))
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Class 8: the user's numbers as given.


def test_float64_maps_are_compared_in_float64(tmp_path):
    """A threshold between two values float32 merges: the float64 map keeps them apart."""
    shape = (40, 50)
    rng = np.random.default_rng(0)
    sal = rng.random(shape)
    # The top 10% threshold falls among 1 + k * 1e-12 values that are equal in float32.
    flat = sal.ravel()
    order = np.argsort(flat)
    flat[order[-300:]] = 1.0 + np.arange(300) * 1e-12
    sal = flat.reshape(shape)
    assert np.unique(sal.astype(np.float32)).size < np.unique(sal).size
    np.save(tmp_path / "a.npy", sal)
    heat = rng.random(shape)
    (loaded,) = saliency.load_saliency_maps(tmp_path, ["a"], [shape])
    assert loaded.dtype == np.float64 and np.array_equal(loaded, sal)
    got = compare.compare_maps([heat], [loaded], (10,))
    want = compare.relative_risk(heat[None], sal[None], 10)
    as32 = compare.relative_risk(heat[None], sal.astype(np.float32)[None], 10)
    assert got["rr_10"][0] == want.rr[0] and got["tp_10"][0] == want.tp[0]
    assert (as32.tp[0], as32.fn[0]) != (want.tp[0], want.fn[0])  # float32 would change it
    region = compare.top_region(sal, 10)[0]
    assert region.sum() == int(0.1 * sal.size)  # all distinct in float64: exactly 10%


def test_saliency_decodes_every_image_before_writing_a_map(tmp_path):
    images = tmp_path / "images"
    aim1_demo.write_images(images, 3, 32, np.random.default_rng(0))
    last = sorted(images.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:200])  # truncated: its header still reads
    out = tmp_path / "maps"
    with pytest.raises(ValueError, match=rf"{last.name}: cannot read image"):
        saliency.write_saliency_maps(images, out, {}, weights_sha256="x", progress=False)
    assert not out.exists()
    # The command line decodes them before it even reads the weights (none are converted here).
    proc = subprocess.run([sys.executable, "-m", "experiments.saliency", f"--data_dir={images}",
                           f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu",
                               storage.CACHE_ENV: str(tmp_path / "empty_cache")})
    assert proc.returncode == 1, proc.stderr[-2000:]
    _one_error(proc.stderr, f"{last}: cannot read image")
    assert "weights_convert" not in proc.stderr and not out.exists()
