"""Checkpoint reading, conversion and loading: wrappers, the CLI, and every refusal path.

Full-size VGG-16 checkpoints here are broadcast views of one number per tensor (a few KB on
disk, see `torch_vgg.constant_vgg16_state_dict`); the numerics are in test_vgg16_torch.py.
"""

from __future__ import annotations

import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from absl import app
from flax import traverse_util
from torch_alexnet import TorchAlexNet
from torch_resnet50 import TorchResNet50
from torch_vgg import constant_state_dict, constant_vgg16_state_dict
from torch_vgg19 import torch_vgg19

from ais_jax import weights
from weights_convert import __main__ as cli
from weights_convert.checkpoint import (
    CheckpointError,
    convert_checkpoint,
    read_state_dict,
    sha256_file,
)
from weights_convert.keymap import ConversionError, Rule, convert, expected_shapes
from weights_convert.vgg16 import CLASSIFIER_INDEX, FEATURE_INDEX

REPO = Path(__file__).resolve().parents[1]


def assert_nothing_written(directory: Path, keep: set[str]) -> None:
    """Only the files in ``keep`` exist in ``directory``: no output, no temporary file."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(keep)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# --- reading checkpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True])
def test_read_unwraps_wrappers_and_parallel_prefixes(tmp_path, legacy):
    tensors = {"module.a.weight": torch.arange(6.0).reshape(2, 3), "module.a.bias": torch.ones(2)}
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 90, "arch": "vgg16", "model": {"state_dict": tensors}}, path,
               _use_new_zipfile_serialization=not legacy)
    state = read_state_dict(path)
    assert sorted(state) == ["a.bias", "a.weight"]
    np.testing.assert_array_equal(state["a.weight"], np.arange(6.0).reshape(2, 3))


def test_read_bfloat16_becomes_float32(tmp_path):
    path = tmp_path / "bf16.pth"
    torch.save({"w": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)}, path)
    state = read_state_dict(path)
    assert state["w"].dtype == np.float32
    np.testing.assert_array_equal(state["w"], [1.5, -2.0])


def test_read_rejects_non_tensor_entries_by_name(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"features.0.weight": torch.ones(2), "epoch": 3, "note": "hi"}, path)
    with pytest.raises(CheckpointError, match=r"not tensors: epoch \(int\), note \(str\)"):
        read_state_dict(path)


def test_read_rejects_colliding_prefixes(tmp_path):
    path = tmp_path / "dup.pth"
    torch.save({"a": torch.ones(1), "module.a": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match="collide"):
        read_state_dict(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth: no such checkpoint file"):
        read_state_dict(tmp_path / "nope.pth")


def test_read_without_torch_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "x.pth"
    torch.save({"a": torch.ones(1)}, path)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[convert\]'"):
        read_state_dict(path)


def test_library_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import ais_jax, ais_jax.weights, ais_jax.models.vgg16\n"
            "import weights_convert.checkpoint, weights_convert.vgg16, weights_convert.download\n"
            "import weights_convert.vgg19, weights_convert.alexnet, weights_convert.resnet50\n"
            "import ais_jax.models.registry\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr


# --- conversion -------------------------------------------------------------------------------


def test_cli_converts_wrapped_legacy_checkpoint_with_any_class_count(tmp_path, cache, capsys):
    state = constant_vgg16_state_dict(num_classes=10)
    src = tmp_path / "vgg16_10.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 7}, src,
               _use_new_zipfile_serialization=False)
    assert cli.run("ecoset", src=str(src)) == 0
    out, err = capsys.readouterr()
    path = cache / "weights" / "ecoset.safetensors"
    assert f"into {path}: 32 tensors, 10 classes" in out and sha256_file(src) in out
    assert "published ecoset VGG-16 has 565 classes, this checkpoint 10" in err

    params, metadata = weights.load_vgg16("ecoset")
    assert metadata["num_classes"] == "10" and metadata["source_file"] == "vgg16_10.pth"
    assert metadata["format_version"] == weights.FORMAT_VERSION
    # Every torch tensor landed in its own Flax parameter (tensor i is filled with i + 1).
    value = {k: float(v.flatten()[0]) for k, v in state.items()}
    names = {**{n: f"features.{i}" for n, i in FEATURE_INDEX.items()},
             **{n: f"classifier.{i}" for n, i in CLASSIFIER_INDEX.items()}}
    for path_, array in traverse_util.flatten_dict(params, sep="/").items():
        _, layer, kind = path_.split("/")
        key = f"{names[layer]}.{'weight' if kind == 'kernel' else 'bias'}"
        assert float(array.min()) == float(array.max()) == value[key], path_
    assert params["head"]["fc6"]["kernel"].shape == (25088, 4096)


def test_existing_output_needs_force(tmp_path):
    src = tmp_path / "vgg.pth"
    torch.save(constant_vgg16_state_dict(num_classes=3), src)
    out = tmp_path / "out.safetensors"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="out.safetensors: already exists; pass --force"):
        convert_checkpoint("imagenet", src, out)
    assert out.read_text() == "keep me"
    assert convert_checkpoint("imagenet", src, out, force=True)[1]["num_classes"] == "3"


def test_rejects_resnet_checkpoint(tmp_path):
    resnet = {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.running_mean": torch.zeros(64),
              "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1),
              "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    src = tmp_path / "resnet50.pth"
    torch.save(resnet, src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint("imagenet", src, tmp_path / "out.safetensors")
    assert str(info.value).startswith(f"{src}: cannot convert")
    assert info.value.problems[0].startswith("not a VGG-16 checkpoint")
    assert "conv1.weight" in info.value.problems[0]
    assert_nothing_written(tmp_path, {"resnet50.pth"})


def test_rejects_one_wrong_shape_naming_the_key(tmp_path):
    state = constant_vgg16_state_dict(num_classes=565)
    state["features.10.weight"] = torch.zeros(256, 128, 5, 5)
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint("ecoset", src, tmp_path / "out.safetensors")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("features.10.weight: shape (256, 128, 5, 5)")
    assert "trunk/conv3_1/kernel" in info.value.problems[0]
    assert_nothing_written(tmp_path, {"bad.pth"})


def test_rejects_missing_and_extra_keys(tmp_path):
    state = constant_vgg16_state_dict(num_classes=5)
    del state["features.28.bias"]
    state["features.30.weight"] = torch.zeros(3)
    src = tmp_path / "odd.pth"
    torch.save(state, src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint("ecoset", src, tmp_path / "out.safetensors")
    assert sorted(info.value.problems) == [
        "features.30.weight: unexpected key",
        "missing tensor for trunk/conv5_3/bias (shape (512,))",
    ]


def test_missing_is_judged_by_target_not_by_text_of_other_problems():
    # "a/b" occurs inside the problem about "a/bb"; it is still reported missing. A target
    # whose own tensor was reported (bad shape, integer dtype) is not reported missing too.
    rules = [Rule(r"(\w+)\.(\w+)", r"\1/\2")]
    expected = {"a/b": (2,), "a/bb": (3,), "a/c": (4,)}
    with pytest.raises(ConversionError) as info:
        convert({"a.bb": np.zeros(5, np.float32), "a.c": np.zeros(4, np.int64)}, rules,
                expected, source="s.pth")
    assert sorted(info.value.problems) == [
        "a.bb: shape (5,) does not fit a/bb (expected (3,) after the 'same' layout)",
        "a.c: dtype int64, expected a floating-point tensor",
        "missing tensor for a/b (shape (2,))",
    ]


def test_expected_shapes_is_the_one_flattening_helper():
    assert expected_shapes is weights.flat_shapes
    tree = {"x": {"kernel": np.zeros((2, 3)), "bias": np.zeros(3)}}
    assert expected_shapes(tree) == {"x/kernel": (2, 3), "x/bias": (3,)}


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9])
def test_rejects_truncated_file(tmp_path, legacy, fraction):
    full = tmp_path / "full.pth"
    torch.save({k: v.clone() for k, v in list(constant_vgg16_state_dict(5).items())[:4]}, full,
               _use_new_zipfile_serialization=not legacy)
    data = full.read_bytes()
    src = tmp_path / "cut.pth"
    src.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"cut.pth: (cannot read|refused)") as info:
        convert_checkpoint("ecoset", src, tmp_path / "out.safetensors")
    assert "truncated" in str(info.value)
    assert_nothing_written(tmp_path, {"full.pth", "cut.pth"})


class _RunsShell:
    """Unpickling this runs a shell command: what a malicious checkpoint would do."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("writer", ["pickle", "torch_zip", "torch_legacy"])
def test_rejects_code_executing_pickle(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = {"features.0.weight": _RunsShell(f"touch {shlex.quote(str(marker))}")}
    src = tmp_path / "evil.pth"
    if writer == "pickle":
        src.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, src, _use_new_zipfile_serialization=writer == "torch_zip")
    with pytest.raises(CheckpointError, match=r"evil.pth: refused to load.*posix.system"):
        convert_checkpoint("ecoset", src, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert_nothing_written(tmp_path, {"evil.pth"})
    # Control: the payload is live, so the refusal above is what kept it from running.
    torch.load(src, weights_only=False) if writer != "pickle" else pickle.loads(src.read_bytes())
    assert marker.exists()


def test_cli_failure_prints_error_and_writes_nothing(tmp_path, cache, capsys):
    src = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(10, 4)}, src)
    assert cli.run("imagenet", src=str(src)) == 1
    assert "not a VGG-16 checkpoint" in capsys.readouterr().err
    assert not cache.exists()


def test_cli_transalnet_download_says_where_to_get_it(capsys):
    assert cli.run("transalnet_dense", download=True) == 1
    err = capsys.readouterr().err
    assert "TranSalNet_Dense.pth" in err and "github.com/LJOVO/TranSalNet" in err
    assert "--src" in err


def test_cli_downloaded_file_that_is_not_a_checkpoint_says_to_delete_it(tmp_path, cache,
                                                                        monkeypatch, capsys):
    stale = tmp_path / "vgg16_ecoset.pth"
    stale.write_bytes(b"\x80\x02garbage that is no checkpoint")  # passes the download's check
    monkeypatch.setattr(cli, "fetch_checkpoint", lambda model: stale)
    assert cli.run("ecoset", download=True) == 1
    err = capsys.readouterr().err
    assert f"delete {stale} and rerun with --download" in err
    assert not cache.exists()
    src_only = cli.run("ecoset", src=str(stale))  # the user's own file: no such advice
    assert src_only == 1 and "rerun with --download" not in capsys.readouterr().err


def test_cli_without_model_prints_usage():
    result = subprocess.run([sys.executable, "-m", "weights_convert"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m weights_convert --model=MODEL")
    for command in ("--model=ecoset --download", "--model=imagenet --src=",
                    "--model=transalnet_dense --src="):
        assert f"python -m weights_convert {command}" in result.stderr
    assert ("imagenet, ecoset, vgg16_imagenet, vgg16_ecoset, vgg19_imagenet, alexnet_imagenet, "
            "alexnet_ecoset, resnet50_imagenet, resnet50_ecoset, transalnet_dense"
            in result.stderr)


def test_cli_needs_exactly_one_source():
    with pytest.raises(app.UsageError, match="exactly one of --src=FILE.pth and --download"):
        cli.run("ecoset")
    with pytest.raises(app.UsageError, match="exactly one"):
        cli.run("ecoset", src="a.pth", download=True)


# --- loading converted weights ----------------------------------------------------------------


def test_missing_weights_message_gives_the_commands(cache):
    with pytest.raises(weights.MissingWeightsError) as info:
        weights.load_vgg16("ecoset")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(cache / "weights" / "ecoset.safetensors") in message
    assert "python -m weights_convert --model=ecoset --download" in message
    assert "python -m weights_convert --model=ecoset --src=/path/to/checkpoint.pth" in message
    assert "$AIS_JAX_CACHE" in message
    assert not cache.exists()


def test_missing_weights_file_by_path(tmp_path):
    with pytest.raises(weights.MissingWeightsError, match="w.safetensors: no converted weights"):
        weights.load_vgg16(tmp_path / "w.safetensors")


def _small_file(path: Path, **metadata: str) -> Path:
    params = {"head": {"fc8": {"bias": np.arange(3, dtype=np.float32)}}}
    weights.save_params(path, params, {"model": "ecoset", "source_file": "x.pth",
                                       "source_sha256": "0" * 64, **metadata})
    return path


def test_save_and_load_params_round_trip(tmp_path):
    params, metadata = weights.load_params(_small_file(tmp_path / "w.safetensors", extra="1"))
    np.testing.assert_array_equal(params["head"]["fc8"]["bias"], [0, 1, 2])
    assert metadata["extra"] == "1" and metadata["ais_jax_version"]


def test_load_rejects_truncated_weights_file(tmp_path):
    path = _small_file(tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="w.safetensors: not a readable safetensors"):
        weights.load_params(path)


def test_load_rejects_other_format_version(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "FORMAT_VERSION", "0")
    path = _small_file(tmp_path / "w.safetensors")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="w.safetensors: weights format version 0"):
        weights.load_params(path)


def test_load_vgg16_rejects_wrong_tensors(tmp_path):
    path = _small_file(tmp_path / "w.safetensors", num_classes="3")
    with pytest.raises(ValueError, match=r"w.safetensors: not VGG-16 weights with 3 classes: "
                                         r"head/fc6/bias: missing .* and 26 more"):
        weights.load_vgg16(path)
    with pytest.raises(ValueError, match="not VGG-16"):
        weights.load_vgg16(_small_file(tmp_path / "t.safetensors", model="transalnet_dense"))


# --- AlexNet, VGG-19, ResNet-50 and the model names --------------------------------------------

# Each model name's torch builder and a few source keys -> converted paths, written out by hand
# (not read from the converter's rules) to pin torchvision's layout.
NETWORKS = {
    "alexnet_ecoset": (TorchAlexNet, {
        "features.0.weight": "trunk/conv1/kernel", "features.10.bias": "trunk/conv5/bias",
        "classifier.1.weight": "head/fc6/kernel", "classifier.6.bias": "head/fc8/bias"}),
    "vgg19_imagenet": (lambda n: torch_vgg19(n), {
        "features.16.weight": "trunk/conv3_4/kernel", "features.34.bias": "trunk/conv5_4/bias",
        "classifier.3.weight": "head/fc7/kernel"}),
    "resnet50_ecoset": (TorchResNet50, {
        "conv1.weight": "trunk/conv1/kernel", "bn1.running_mean": "trunk/bn1/mean",
        "layer2.0.downsample.0.weight": "trunk/layer2_block0/downsample_conv/kernel",
        "layer2.0.downsample.1.weight": "trunk/layer2_block0/downsample_bn/scale",
        "layer3.5.conv2.weight": "trunk/layer3_block5/conv2/kernel",
        "layer4.2.bn3.running_var": "trunk/layer4_block2/bn3/var",
        "fc.weight": "head/fc/kernel", "fc.bias": "head/fc/bias"}),
}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("model", list(NETWORKS))
def test_cli_converts_wrapped_checkpoints_of_every_network(tmp_path, cache, capsys, model,
                                                           legacy):
    build, pinned = NETWORKS[model]
    state = constant_state_dict(lambda: build(565))
    src = tmp_path / f"{model}.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, src,
               _use_new_zipfile_serialization=not legacy)
    assert cli.run(model, src=str(src)) == 0
    out, err = capsys.readouterr()
    tensors = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    assert f"{tensors} tensors, 565 classes" in out
    assert ("has 1000 classes, this checkpoint 565" in err) == model.endswith("_imagenet")

    params, metadata, arch = weights.load_model(model)
    assert metadata["architecture"] == arch.name == weights.MODEL_ARCHITECTURES[model]
    assert metadata["model"] == model and metadata["num_classes"] == "565"
    flat = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    # Tensor i of the checkpoint holds i + 1: every converted tensor is one source tensor,
    # each used once, and the pinned ones are where torchvision's layout says.
    values = {k: float(v.flatten()[0]) for k, v in state.items()}
    got = {path: float(a.flat[0]) for path, a in flat.items()}
    assert all(float(a.min()) == float(a.max()) for a in flat.values())
    assert len(got) == tensors and len(set(got.values())) == tensors
    for key, path in pinned.items():
        assert got[path] == values[key], f"{key} -> {path}"


def test_vgg16_conversion_is_unchanged_to_the_bit(tmp_path):
    # The digest of the tensors (the cache key of everything computed with them) that the
    # converter before AlexNet, VGG-19 and ResNet-50 (commit 8642f45) gave for this checkpoint.
    src = tmp_path / "vgg16.pth"
    torch.save(constant_vgg16_state_dict(num_classes=10), src)
    _, metadata, _ = convert_checkpoint("vgg16_ecoset", src, tmp_path / "new.safetensors")
    assert metadata["tensors_sha256"] == (
        "ff4a28cb7ff293c1b4aa1044496b046a37e918418180533cfd44a6b1182f4df1")
    assert metadata["model"] == "ecoset" and metadata["architecture"] == "vgg16"
    # A file converted before the architecture was recorded still loads, as VGG-16.
    params, old = weights.load_params(tmp_path / "new.safetensors")
    del old["architecture"]
    weights.save_params(tmp_path / "old.safetensors", params, old)
    _, reread, arch = weights.load_model(tmp_path / "old.safetensors")
    assert arch.name == "vgg16" and "architecture" not in reread
    assert reread["tensors_sha256"] == metadata["tensors_sha256"]


def test_vgg16_aliases_share_the_file_of_their_name(tmp_path, cache):
    assert weights.weights_path("vgg16_ecoset") == weights.weights_path("ecoset")
    assert weights.weights_path("vgg16_imagenet") == cache / "weights" / "imagenet.safetensors"
    src = tmp_path / "vgg16.pth"
    torch.save(constant_vgg16_state_dict(num_classes=4), src)
    assert cli.run("vgg16_imagenet", src=str(src)) == 0
    for name in ("imagenet", "vgg16_imagenet"):
        _, metadata = weights.load_vgg16(name)
        assert metadata["model"] == "imagenet"
    # The alias checks what the file holds as its own name would.
    weights.weights_path("imagenet").rename(cache / "weights" / "ecoset.safetensors")
    with pytest.raises(ValueError, match="holds 'imagenet' weights, expected 'vgg16_ecoset'"):
        weights.load_vgg16("vgg16_ecoset")


def test_cli_warns_on_an_unusual_class_count_naming_the_network(tmp_path, cache, capsys):
    src = tmp_path / "alexnet.pth"
    torch.save(constant_state_dict(lambda: TorchAlexNet(10)), src)
    assert cli.run("alexnet_imagenet", src=str(src)) == 0
    err = capsys.readouterr().err
    assert "published imagenet AlexNet has 1000 classes, this checkpoint 10" in err


def test_resnet_checkpoint_lists_every_problem_together(tmp_path):
    state = dict(constant_state_dict(lambda: TorchResNet50(565)))
    state["layer3.2.conv2.weight"] = torch.zeros(256, 256, 5, 5)
    del state["layer4.1.bn2.running_var"]
    state["layer5.0.conv1.weight"] = torch.zeros(3)
    state["fc.bias"] = torch.zeros(565, dtype=torch.int64)
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint("resnet50_ecoset", src, tmp_path / "out.safetensors")
    assert sorted(info.value.problems) == [
        "fc.bias: dtype int64, expected a floating-point tensor",
        "layer3.2.conv2.weight: shape (256, 256, 5, 5) does not fit "
        "trunk/layer3_block2/conv2/kernel (expected (3, 3, 256, 256) after the 'conv' layout)",
        "layer5.0.conv1.weight: unexpected key",
        "missing tensor for trunk/layer4_block1/bn2/var (shape (512,))",
    ]
    assert_nothing_written(tmp_path, {"bad.pth"})


@pytest.mark.parametrize("model, other, problems", [
    ("alexnet_ecoset", TorchResNet50, ["not an AlexNet checkpoint: none of its 320 keys",
                                       "classifier.6.weight: missing"]),
    ("resnet50_imagenet", TorchAlexNet, ["not a ResNet-50 checkpoint: none of its 16 keys",
                                         "fc.weight: missing"]),
])
def test_another_network_is_named_as_such(tmp_path, model, other, problems):
    src = tmp_path / "other.pth"
    torch.save(constant_state_dict(lambda: other(565)), src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(model, src, tmp_path / "out.safetensors")
    assert len(info.value.problems) == len(problems)
    for got, want in zip(info.value.problems, problems, strict=True):
        assert got.startswith(want)
    assert_nothing_written(tmp_path, {"other.pth"})


def test_alexnet_as_vgg19_lists_every_misfit_together(tmp_path):
    src = tmp_path / "alexnet.pth"
    torch.save(constant_state_dict(lambda: TorchAlexNet(565)), src)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint("vgg19_imagenet", src, tmp_path / "out.safetensors")
    problems = info.value.problems
    assert "features.0.weight: shape (64, 3, 11, 11) does not fit trunk/conv1_1/kernel " \
           "(expected (3, 3, 3, 64) after the 'conv' layout)" in problems
    assert "features.3.weight: unexpected key" in problems  # a ReLU in VGG-19
    assert "classifier.1.weight: unexpected key" in problems
    assert "missing tensor for trunk/conv5_4/kernel (shape (3, 3, 512, 512))" in problems
    assert len(problems) == 44 and str(info.value).startswith(f"{src}: cannot convert (44 ")


def test_load_model_refuses_other_networks_and_lists_shape_problems(tmp_path):
    resnet = _small_file(tmp_path / "r.safetensors", model="resnet50_ecoset",
                         architecture="resnet50", num_classes="3")
    with pytest.raises(ValueError, match=r"r.safetensors: not ResNet-50 weights with 3 classes: "
                                         r"head/fc/bias: missing .* and 263 more"):
        weights.load_model(resnet)
    with pytest.raises(ValueError, match=r"holds ResNet-50 weights \('resnet50_ecoset'\), "
                                         r"not VGG-16"):
        weights.load_vgg16(resnet)
    odd = _small_file(tmp_path / "o.safetensors", architecture="inception", num_classes="3")
    with pytest.raises(ValueError, match="o.safetensors: unknown architecture 'inception'"):
        weights.load_model(odd)
    saliency = _small_file(tmp_path / "t.safetensors", model="transalnet_dense")
    with pytest.raises(ValueError, match="not an AIS network .VGG-16, VGG-19, AlexNet, ResNet-50"):
        weights.load_model(saliency)


def test_every_ais_model_has_a_converter_a_download_and_an_architecture():
    from weights_convert.download import SOURCES

    assert set(weights.AIS_MODELS) <= set(SOURCES)
    for model in weights.AIS_MODELS:
        assert weights.architecture_of({"model": model}).name == weights.MODEL_ARCHITECTURES[model]


def test_missing_weights_of_another_network_give_its_commands(cache):
    with pytest.raises(weights.MissingWeightsError) as info:
        weights.load_model("resnet50_ecoset")
    message = str(info.value)
    assert str(cache / "weights" / "resnet50_ecoset.safetensors") in message
    assert "python -m weights_convert --model=resnet50_ecoset --download" in message
    with pytest.raises(ValueError, match="unknown model 'resnet18'; expected one of imagenet"):
        weights.weights_path("resnet18")
