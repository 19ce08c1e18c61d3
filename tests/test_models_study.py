"""The study side of #19: every aim, the demo and the benchmark on any registered architecture.

Small architectures of both head families are registered here (`tests/tiny_archs.py`), so
nothing below assumes VGG-16: the trunk, the pool, M and the map grid come from the model's
`Architecture`; VGG-16's cache keys stay those of before; several models run side by side and
the cross-model tables pair every two of them; the command line names unknown or repeated
models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest
from tiny_archs import tiny_arch

from ais_jax import storage
from ais_jax.data.images import PREPROCESS_VERSION, load_batch
from ais_jax.engine import activations
from ais_jax.fitting import compare
from ais_jax.models import registry
from ais_jax.report import figures, paper
from ais_jax.study import aim1, aim1_demo, aim2, bench
from ais_jax.weights import load_model, save_params

REPO = Path(__file__).resolve().parents[1]
SIZE = 64  # image side: tiny (stride 8) has an 8 x 8 grid, tiny4 (stride 4) 16 x 16


@pytest.fixture
def archs(monkeypatch, tmp_path_factory):
    """Registers tiny (6 maps, 8 x 8), tiny4 (5 maps, 16 x 16) and tiny_gap (7 maps, gap),
    with a cache of the test's own."""
    made = {"tiny": tiny_arch("tiny", stride=8, maps=6),
            "tiny4": tiny_arch("tiny4", stride=4, maps=5),
            "tiny_gap": tiny_arch("tiny_gap", stride=8, maps=7, head_family="gap")}
    for name, arch in made.items():
        monkeypatch.setitem(registry.ARCHITECTURES, name, arch)
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    return made


def _images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        PIL.Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _checkpoint(path: Path, arch, seed: int) -> Path:
    params = arch.random_params(jax.random.key(seed), 10)
    save_params(path, params, {"model": f"test_{arch.name}", "architecture": arch.name,
                               "source_file": "tests", "source_sha256": f"{seed:064d}",
                               "num_classes": "10"})
    return path


def test_vgg16_cache_keys_are_those_of_before_and_others_name_their_architecture(tmp_path,
                                                                                archs):
    paths = _images(tmp_path / "images", 3)
    before = storage.cache_key(weights="d", images=activations.images_digest(paths),
                               preprocess=PREPROCESS_VERSION, size=32,
                               format=activations.ACTIVATION_CACHE_VERSION)
    assert activations.activation_key("d", paths, 32) == before
    assert activations.activation_key("d", paths, 32, arch="vgg16") == before
    tiny = activations.activation_key("d", paths, 32, arch=archs["tiny"])
    assert tiny != before and tiny != activations.activation_key("d", paths, 32, arch="tiny4")
    with pytest.raises(ValueError, match="unknown architecture 'nope'; known: vgg16, .*tiny"):
        activations.activation_key("d", paths, 32, arch="nope")


@pytest.mark.parametrize("name", ["tiny", "tiny4", "tiny_gap"])
def test_activations_and_blocks_come_from_the_architecture(tmp_path, archs, name):
    arch = archs[name]
    paths = _images(tmp_path / "images", 5)
    params = arch.random_params(jax.random.key(1), 10)
    cached = activations.cached_activations(params["trunk"], "w", paths, image_size=SIZE,
                                            batch_size=2, arch=arch)
    expected = arch.trunk_apply(params["trunk"], jnp.asarray(load_batch(paths, size=SIZE)))
    stride = 4 if name == "tiny4" else 8
    assert cached.value.shape == (5, SIZE // stride, SIZE // stride, arch.maps)
    np.testing.assert_allclose(cached.value, np.asarray(expected), rtol=1e-6, atol=1e-7)
    blocks = np.asarray(activations.blocks_from_acts(cached.value, arch))
    assert blocks.shape == (5, arch.maps, 1 if arch.head_family == "gap" else 4)
    np.testing.assert_array_equal(blocks, np.asarray(arch.pool(jnp.asarray(cached.value))))
    again = activations.cached_activations(params["trunk"], "w", paths, image_size=SIZE,
                                           arch=name)
    assert again.hit and again.path == cached.path


def test_loading_checks_the_shapes_of_the_architecture_the_file_names(tmp_path, archs):
    path = _checkpoint(tmp_path / "t.safetensors", archs["tiny"], 0)
    params, meta, arch = load_model(path)
    assert arch is archs["tiny"] and meta["architecture"] == "tiny"
    wrong = archs["tiny4"].random_params(jax.random.key(0), 10)
    save_params(tmp_path / "w.safetensors", wrong, {
        "model": "x", "architecture": "tiny", "source_file": "t", "source_sha256": "0" * 64,
        "num_classes": "10"})
    with pytest.raises(ValueError, match=r"w.safetensors: not tiny weights with 10 classes: "
                                         r"trunk/conv/kernel: shape \(3, 3, 3, 5\), expected "
                                         r"\(3, 3, 3, 6\); trunk/conv/bias: shape \(5,\)"):
        load_model(tmp_path / "w.safetensors")


def test_demo_plants_and_recovers_maps_of_another_architecture(tmp_path, archs):
    result = aim1_demo.run_demo(aim1_demo.DemoConfig(
        out=str(tmp_path / "demo"), n_images=15, image_size=SIZE, planted=3, folds=2,
        seeds=(111,), model="tiny", batch_size=8))
    assert result["planted"].max() < archs["tiny"].maps and result["planted"].size == 3
    assert result["row"]["global_ais"].shape == (archs["tiny"].maps,)
    assert result["checkpoint"].name == "synthetic_tiny.safetensors"
    # With each map feeding only its own units, the planted maps rank on top.
    assert result["recovery"]["auc"] > 0.8
    out = tmp_path / "demo"
    demo = json.loads((out / "demo.json").read_text())
    assert demo["config"]["model"] == "tiny" and demo["responsive_maps"] <= 6
    run = json.loads((out / "run.json").read_text())
    assert run["checkpoints"]["synthetic"]["metadata"]["architecture"] == "tiny"
    summary = (out / "summary.md").read_text()
    assert "* Network: tiny shapes" in summary and "own 8 fc6 units" in summary
    with pytest.raises(ValueError, match=r"planted must be in \[1, 6\) \(tiny has 6 maps\)"):
        aim1_demo.run_demo(aim1_demo.DemoConfig(out=str(tmp_path / "x"), planted=6,
                                                model="tiny"))
    with pytest.raises(ValueError, match="unknown architecture 'nope'; known: vgg16"):
        aim1_demo.run_demo(aim1_demo.DemoConfig(out=str(tmp_path / "x"), model="nope"))


def test_demo_network_of_a_gap_head_is_its_random_head(tmp_path, archs):
    """A global-average-pool embedding is separable as it is: no head is constructed."""
    paths = _images(tmp_path / "images", 4)
    cfg = aim1_demo.DemoConfig(out=str(tmp_path / "demo"), image_size=SIZE, model="tiny_gap")
    path = tmp_path / "gap.safetensors"
    params, meta = aim1_demo.demo_network(path, cfg, paths)
    _, _, arch = load_model(path)
    assert arch is archs["tiny_gap"] and meta["architecture"] == "tiny_gap"
    assert meta["model"] == "demo_synthetic_tiny_gap" and "random head" in meta["description"]
    expected = archs["tiny_gap"].random_params(jax.random.key(cfg.seed), aim1_demo.DEMO_CLASSES)
    np.testing.assert_array_equal(params["head"]["fc"]["kernel"], expected["head"]["fc"]["kernel"])
    # Its activations are filed under the saved tensors' digest, keyed with the architecture.
    again = activations.cached_activations({}, meta["tensors_sha256"], paths, image_size=SIZE,
                                           arch="tiny_gap")
    assert again.hit and again.value.shape == (4, SIZE // 8, SIZE // 8, 7)


def test_demo_and_bench_run_on_a_gap_head(tmp_path, archs):
    """The demo's small configuration and the benchmark row on a global-average-pool head."""
    result = aim1_demo.run_demo(aim1_demo.DemoConfig(
        out=str(tmp_path / "demo"), n_images=15, image_size=SIZE, planted=3, folds=2,
        seeds=(111,), model="tiny_gap", batch_size=8, methods=("greedy", "reweight")))
    maps = archs["tiny_gap"].maps
    assert result["planted"].size == 3 and result["planted"].max() < maps
    assert result["row"]["global_ais"].shape == (maps,)
    assert result["checkpoint"].name == "synthetic_tiny_gap.safetensors"
    assert 0.0 <= result["recovery"]["auc"] <= 1.0
    summary = (tmp_path / "demo" / "summary.md").read_text()
    # The methods' text names this model's M and embedding width (the gap embedding is M wide).
    assert f"over the {maps} maps (optax" in summary
    assert f"on the {maps} penultimate features (Peterson" in summary
    assert (tmp_path / "demo" / "figure1.png").is_file()
    res = bench.run_models(bench.BenchConfig(n=15, repeats=1, matmul_size=64,
                                             models=("tiny_gap",)))
    row = res["models"]["tiny_gap"]
    assert row["head_family"] == "gap" and row["maps"] == maps and row["block"] == 1
    assert row["ablations_per_s"] > 0 and row["greedy_s"] > 0
    assert row["flops"] == 6 * maps * 15**2


def test_methods_text_and_paper_numbers_follow_the_model():
    rows = compare.methods_markdown([], "r2", {"vgg16_ecoset": (512, 4096)})
    assert "over the 512 maps (optax" in rows[2] and "on the 4096 penultimate" in rows[2]
    rows = compare.methods_markdown([], "r2", {"a": (256, 4096), "r": (2048, 2048)})
    assert "over each model's maps (a: 256, r: 2048)" in rows[2]
    assert "on each model's penultimate features (a: 4096, r: 2048)" in rows[2]
    for label, key in (("vgg16_ecoset", "ecoset"), ("vgg16_imagenet", "imagenet"),
                       ("ecoset", "ecoset")):
        assert paper.figure1(label, "animals") == paper.figure1(key, "animals") is not None
        assert paper.table1(label, "all", 10) == paper.table1(key, "all", 10) is not None
    for label in ("alexnet_ecoset", "resnet50_imagenet", "vgg19_imagenet"):
        assert paper.figure1(label, "animals") is None and paper.table1(label, "all", 10) is None


def test_figure1_leaves_out_a_condition_undefined_on_every_fold(tmp_path):
    """A gap head's hard soft-mask set can keep one non-zero map per image: NaN on every fold."""
    row = {"model": "m", "dataset": "d", "mean_full": 0.5, "mean_retained": 0.6,
           "se_paired": 0.1, "mean_set_size": 3.0}
    extra = [{"model": "m", "dataset": "d", "method": "softmask_hard", "mean_test": np.nan,
              "se_paired": np.nan}]
    fig = figures.figure1([row], extra_rows=extra)
    assert fig.axes[0].get_ylim()[1] == pytest.approx(0.7 * 1.15 + 1e-3)
    figures.save_figure(fig, tmp_path / "figure1.png")


def test_separable_head_of_another_size_gives_each_map_its_own_units():
    rng = np.random.default_rng(0)
    blocks = np.abs(rng.normal(size=(9, 6, 4)))
    head = aim1_demo.separable_head(blocks, np.random.default_rng(1), num_classes=3,
                                    embed_dim=16)
    assert head["fc6"]["kernel"].shape == (24, 16)
    kernel = head["fc6"]["kernel"].reshape(6, 4, 16)
    for k in range(6):  # map k feeds exactly units 2k, 2k + 1; units 12..15 are unused
        used = np.flatnonzero(np.abs(kernel[k]).sum(axis=0))
        assert used.tolist() == [2 * k, 2 * k + 1]
    assert not head["fc6"]["bias"][12:].any() and (head["fc6"]["bias"] <= 0).all()


def _plain_data(tmp_path: Path, n: int) -> tuple[Path, Path]:
    paths = _images(tmp_path / "data", n, seed=3)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, 5))
    sim = np.corrcoef(x)
    np.save(tmp_path / "sim.npy", sim)
    return paths[0].parent, tmp_path / "sim.npy"


def test_aim1_and_aim2_run_models_of_different_grids_side_by_side(tmp_path, archs):
    data, matrix = _plain_data(tmp_path, 12)
    models = (("t_a", str(_checkpoint(tmp_path / "a.safetensors", archs["tiny"], 0))),
              ("t_b", str(_checkpoint(tmp_path / "b.safetensors", archs["tiny"], 1))),
              ("t4", str(_checkpoint(tmp_path / "c.safetensors", archs["tiny4"], 2))))
    common = dict(data_dir=str(data), matrix=str(matrix), kind="similarity", name="plain",
                  models=models, image_size=SIZE, batch_size=4)
    r1 = aim1.run_aim1(aim1.Aim1Config(out=str(tmp_path / "aim1"), folds=2, seeds=(111,),
                                       **common))
    assert [r["model"] for r in r1["rows"]] == ["t_a", "t_b", "t4"]
    assert [r["global_ais"].size for r in r1["rows"]] == [6, 6, 5]
    fold = json.loads(next((tmp_path / "aim1" / "t4" / "plain" / "folds").iterdir()).read_text())
    assert len(fold["train_curve"]) == 5 and sorted(fold["order"]) == list(range(5))

    r2 = aim2.run_aim2(aim2.Aim2Config(out=str(tmp_path / "aim2"), overlays=1, **common))
    out = tmp_path / "aim2"
    pairs = r2["pairs"]["plain"]
    assert [(c["model_a"], c["model_b"]) for c in pairs] == [("t_a", "t_b"), ("t_a", "t4"),
                                                             ("t_b", "t4")]
    assert r2["datasets"]["plain"] is pairs[0]
    rows = (out / "datasets.csv").read_text().splitlines()
    assert len(rows) == 4 and [r.split(",")[2:4] for r in rows[1:]] == [
        ["t_a", "t_b"], ["t_a", "t4"], ["t_b", "t4"]]
    for a, b in (("t_a", "t_b"), ("t_a", "t4"), ("t_b", "t4")):
        head = (out / f"match_plain_{a}_vs_{b}.csv").read_text().splitlines()[0]
        assert head == f"image_id,match,entropy_{a},entropy_{b},max_entropy"
    assert not (out / "match_plain.csv").exists()
    # Each model's heatmaps live on its own map grid; Match compares them at image size.
    grids = {r["model"]: (r["grid_h"], r["grid_w"]) for r in r2["rows"]}
    assert grids == {"t_a": (8, 8), "t_b": (8, 8), "t4": (16, 16)}
    assert np.load(out / "t4" / "plain" / "per_image_ais.npy").shape == (12, 5)
    assert np.isfinite(pairs[1]["match"]).any()
    summary = (out / "summary.md").read_text()
    for a, b in (("t_a", "t_b"), ("t_a", "t4"), ("t_b", "t4")):
        assert f"## {a} vs {b}" in summary
    assert "use the first pair, t_a vs t_b" in summary and "/ 5 |" in summary
    assert "at the conv1 grid" in summary
    assert all(c["paper_match_median"] is None for c in pairs)  # the paper's are VGG-16's


def test_bench_rows_follow_each_architecture(archs):
    config = bench.BenchConfig(n=15, repeats=1, matmul_size=64, models=("tiny", "tiny4"))
    res = bench.run_models(config)
    assert list(res["models"]) == ["tiny", "tiny4"]
    for name, maps, grid in (("tiny", 6, [28, 28]), ("tiny4", 5, [56, 56])):
        row = res["models"][name]
        assert row["maps"] == maps and row["grid"] == grid and row["block"] == 4
        assert row["ablations_per_s"] > 0 and row["greedy_s"] > 0 and row["bound_s"] > 0
        assert row["flops"] == bench.fast_path_flops(15, maps, 4, 48, 48)
    flops, note = bench.model_flops(archs["tiny_gap"], {}, 120, 2048, 1)
    assert flops == 6 * 2048 * 120**2 and "O(M n^2)" in note
    text = bench.format_models_table(res)
    assert "tiny4" in text and "flatten_linear" in text
    with pytest.raises(ValueError, match="more than once"):
        bench.check_models(("tiny", "tiny"))
    with pytest.raises(ValueError, match="unknown architecture 'x'; known: vgg16"):
        bench.check_models(("x",))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.mark.parametrize("flags_, message", [
    (["--model=ecoset,nope"], "--model: unknown model 'nope'; known: imagenet, ecoset"),
    (["--model=ecoset,both"], "names ecoset more than once"),
    (["--model=ecoset,imagenet", "--weights=a.safetensors"],
     "--weights gives 1 file(s) for 2 model(s) (ecoset, imagenet)"),
])
def test_cli_names_unknown_repeated_and_unpaired_models(tmp_path, flags_, message):
    data = tmp_path / "data"
    data.mkdir()
    proc = _cli("experiments.aim1", f"--data_dir={data}", f"--out={tmp_path / 'out'}", *flags_)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_demo_model_and_bench_model_name_unknown_architectures(tmp_path):
    proc = _cli("experiments.aim1", "--demo", "--demo_model=nope", f"--out={tmp_path / 'd'}")
    assert proc.returncode == 1 and "unknown architecture 'nope'; known: vgg16" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "d").exists()
    proc = _cli("experiments.bench", "--model=vgg16,vgg16", f"--out={tmp_path / 'b.json'}")
    assert proc.returncode == 1 and "--model names vgg16 more than once" in proc.stderr
    assert not (tmp_path / "b.json").exists()
