"""TranSalNet-Dense in Flax against a PyTorch reference, block by block and end to end.

A PyTorch TranSalNet-Dense (tests/torch_transalnet.py: torchvision/release module names,
random weights, random BatchNorm statistics) is saved as a checkpoint, converted through the
real conversion path, and compared with the Flax port on a square and a non-square image that
go through the full pre- and post-processing. The network is compiled once for the module.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest
import torch
import torch_transalnet as tt
import torch_transalnet_reference as ref
from flax import traverse_util
from torch.nn import functional as F

from ais_jax import weights
from ais_jax.explain import saliency
from ais_jax.models import transalnet
from weights_convert import checkpoint
from weights_convert.keymap import ConversionError
from weights_convert.transalnet import convert_state_dict

IMAGE_SHAPES = {"square": (300, 300), "tall": (333, 250)}  # (H, W)
BLOCKS = ["denseblock2", "denseblock3", "denseblock4",
          "trans_encoder1", "trans_encoder2", "trans_encoder3"]
REPO = Path(__file__).resolve().parents[1]
# Max relative error of the port against torch: measured 0.9e-6 to 1.8e-6 over the blocks and
# the final map (float32 both sides). The tanh-form GELU bug gave 1.1e-4 end to end.
TOLERANCE = 2e-5


def max_rel_err(got, want) -> float:
    """max |got - want| / max |want|."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def torch_model():
    torch.set_num_threads(2)
    return tt.randomize_(tt.TranSalNet(), seed=0)


@pytest.fixture(scope="module")
def checkpoint_file(torch_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "TranSalNet_Dense.pth"
    torch.save(torch_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def params(checkpoint_file):
    state = checkpoint.read_state_dict(checkpoint_file)
    return convert_state_dict(state, source=str(checkpoint_file))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    # Smooth content plus noise, so that resizing matters but values stay varied.
    out = {}
    for name, (h, w) in IMAGE_SHAPES.items():
        yy, xx = np.meshgrid(np.linspace(0, 3, h), np.linspace(0, 3, w), indexing="ij")
        base = 127 + 100 * np.sin(np.stack([yy, xx, yy + xx], -1))
        out[name] = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def model_inputs(images):
    """``[2, 288, 384, 3]`` BGR letterboxed inputs, made by the port's preprocessing."""
    return np.stack([saliency.preprocess(x) for x in images.values()])


@pytest.fixture(scope="module")
def torch_outputs(torch_model, model_inputs):
    with torch.no_grad():
        feats = torch_model.encoder(torch.from_numpy(model_inputs).permute(0, 3, 1, 2))
        sal = torch_model.decoder(feats)
    blocks = dict(zip(BLOCKS[:3], feats, strict=True)) | torch_model.decoder.outputs
    blocks = {k: v.permute(0, 2, 3, 1).numpy() for k, v in blocks.items()}  # NHWC
    return blocks, sal[:, 0].numpy()


@pytest.fixture(scope="module")
def jax_outputs(params, model_inputs):
    sal, inter = saliency.predict(params, model_inputs)
    return jax.tree.map(np.asarray, inter), np.asarray(sal)


def test_preprocessing_gives_the_release_inputs(images, model_inputs):
    # The release's letterbox (float64 OpenCV formula): equal but for exact half-level ties.
    want = np.stack([ref.release_letterbox(x[..., ::-1]) for x in images.values()])
    diff = np.abs(model_inputs - want.astype(np.float32) / 255)
    assert diff.max() <= 1 / 255 + 1e-7 and (diff > 1e-7).mean() < 1e-3


@pytest.mark.parametrize("block", BLOCKS)
def test_blocks_match_torch(jax_outputs, torch_outputs, block):
    got, want = jax_outputs[0][block], torch_outputs[0][block]
    assert got.shape == want.shape
    assert max_rel_err(got, want) <= TOLERANCE


def test_transformer_layer_matches_torch_with_erf_gelu(monkeypatch):
    # One small layer whose MLP pre-activations lie mostly around +-2, where the tanh and erf
    # forms of GELU differ by ~1e-4 of the output: far outside TOLERANCE.
    hidden, heads = 16, 2
    generator = torch.Generator().manual_seed(1)
    block = tt.Block(hidden, heads)
    with torch.no_grad():
        for name, p in block.named_parameters():
            is_norm = "norm" in name
            p.copy_(torch.randn(p.shape, generator=generator) * (0.3 if is_norm else 0.5)
                    + (1.0 if is_norm and name.endswith("weight") else 0.0))
    def numpy(t):
        return t.detach().numpy()
    def linear(m):
        return {"kernel": numpy(m.weight).T, "bias": numpy(m.bias)}
    def norm(m):
        return {"scale": numpy(m.weight), "bias": numpy(m.bias)}
    params = {"attention_norm": norm(block.attention_norm), "ffn_norm": norm(block.ffn_norm),
              "attn": {k: linear(getattr(block.attn, k)) for k in ("query", "key", "value", "out")},
              "fc1": linear(block.ffn.fc1), "fc2": linear(block.ffn.fc2)}
    x = np.random.default_rng(1).normal(0, 1, (2, 6, hidden)).astype(np.float32)
    got = transalnet.TransformerLayer(hidden, heads).apply({"params": params}, x)
    with torch.no_grad():
        tokens = torch.from_numpy(x)
        mid = tokens + block.attn(block.attention_norm(tokens))
        pre_activation = numpy(block.ffn.fc1(block.ffn_norm(mid)))
        want = numpy(block(tokens))
        monkeypatch.setattr(tt.Mlp, "forward",
                            lambda self, h: self.fc2(F.gelu(self.fc1(h), approximate="tanh")))
        want_tanh = numpy(block(tokens))
    assert 1 < np.median(np.abs(pre_activation)) < 3
    assert max_rel_err(got, want) <= TOLERANCE
    assert max_rel_err(got, want_tanh) > 5 * TOLERANCE  # the test can tell the two apart


def test_block_shapes():
    shapes = {"denseblock2": (36, 48, 768), "denseblock3": (18, 24, 2112),
              "denseblock4": (9, 12, 2208), "trans_encoder1": (9, 12, 768),
              "trans_encoder2": (18, 24, 768), "trans_encoder3": (36, 48, 512)}
    variables = {"params": transalnet.param_shapes()}
    sal, inter = jax.eval_shape(transalnet.TranSalNet().apply, variables,
                                jax.ShapeDtypeStruct((3, 288, 384, 3), jnp.float32))
    assert sal.shape == (3, 288, 384)
    assert {k: v.shape[1:] for k, v in inter.items()} == shapes
    with pytest.raises(ValueError, match=r"\[n, 288, 384, 3\].*\(1, 384, 288, 3\)"):
        jax.eval_shape(transalnet.TranSalNet().apply, variables,
                       jax.ShapeDtypeStruct((1, 384, 288, 3), jnp.float32))


def test_final_map_matches_torch_through_postprocessing(jax_outputs, torch_outputs):
    sal_jax, sal_torch = jax_outputs[1], torch_outputs[1]
    assert max_rel_err(sal_jax, sal_torch) <= TOLERANCE
    assert sal_torch.std() > 0.01  # a map with structure, not a constant
    for i, shape in enumerate(IMAGE_SHAPES.values()):
        got = saliency.postprocess(sal_jax[i], shape, quantize=False)
        want = ref.release_postprocess(sal_torch[i], shape, quantize=False)
        assert got.shape == want.shape == shape
        assert max_rel_err(got, want) <= TOLERANCE
        # The saved 8-bit maps: equal but where float32 round-off crosses a grey level.
        diff = np.abs(saliency.postprocess(sal_jax[i], shape) - ref.release_postprocess(
            sal_torch[i], shape))
        assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 0.01


def test_saliency_command_path_end_to_end(checkpoint_file, images, torch_outputs, tmp_path,
                                          monkeypatch):
    # The converter CLI's path: checkpoint -> weights file in the cache -> loaded by name.
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path / "cache"))
    out, meta, num = checkpoint.convert_checkpoint("transalnet_dense", checkpoint_file)
    assert out == weights.weights_path("transalnet_dense") and num == 949
    params, meta = saliency.load_transalnet()
    assert meta["source_file"] == "TranSalNet_Dense.pth"
    for name, pixels in images.items():
        PIL.Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    run = saliency.write_saliency_maps(tmp_path, tmp_path / "maps", params, batch_size=2,
                                       weights_sha256=meta["source_sha256"], progress=False)
    assert run.image_ids == ["square", "tall"] and run.computed == run.image_ids
    for i, (name, shape) in enumerate(IMAGE_SHAPES.items()):
        got = np.load(tmp_path / "maps" / f"{name}.npy")
        want = ref.release_postprocess(torch_outputs[1][i], shape)
        diff = np.abs(got - want)
        assert got.shape == shape and diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 0.01


def test_conversion_maps_every_tensor(torch_model, params):
    flat = traverse_util.flatten_dict(params, sep="/")
    state = tt.state_dict_numpy(torch_model)
    assert len(flat) == 949 == len(state) - 166  # the 166 num_batches_tracked are dropped
    np.testing.assert_array_equal(flat["encoder/conv0/kernel"],
                                  state["encoder.encoder.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(
        flat["encoder/denseblock3/denselayer36/norm2/var"],
        state["encoder.encoder.8.denselayer36.norm2.running_var"])
    np.testing.assert_array_equal(
        flat["decoder/trans_encoder2/layer1/attn/value/kernel"],
        state["decoder.TransEncoder2.transformer_encoder.layer.1.attn.value.weight"].T)
    shapes = traverse_util.flatten_dict(transalnet.param_shapes(), sep="/")
    assert {k: v.shape for k, v in flat.items()} == {k: v.shape for k, v in shapes.items()}


def test_conversion_rejects_densenet121_checkpoint():
    state = tt.state_dict_numpy(tt.TranSalNet(growth=32, blocks=(6, 12, 24, 16), init=64))
    with pytest.raises(ConversionError) as err:
        convert_state_dict(state, source="TranSalNet_D121.pth")
    message = str(err.value)
    assert message.startswith("TranSalNet_D121.pth: cannot convert")
    assert "encoder.encoder.0.weight has shape (64, 3, 7, 7)" in message
    assert "DenseNet-121" in message
    # Every problem is collected, e.g. the 12 dense layers of block 3 it lacks.
    assert any("missing tensor for encoder/denseblock3/denselayer36/conv2/kernel" in p
               for p in err.value.problems)


def test_conversion_names_each_bad_key(torch_model):
    state = tt.state_dict_numpy(torch_model)
    del state["decoder.batchnorm3.running_var"]
    state["decoder.conv8.weight"] = np.zeros((1, 1, 3, 3), np.float32)
    state["decoder.TransEncoder3.position_embeddings"] = np.zeros((1, 108, 512), np.float32)
    with pytest.raises(ConversionError) as err:
        convert_state_dict(state, source="edited.pth")
    problems = "\n".join(err.value.problems)
    assert "missing tensor for decoder/batchnorm3/var" in problems
    assert "decoder.conv8.weight: maps to decoder/conv8/kernel, which the model does not have" \
        in problems
    assert "decoder.TransEncoder3.position_embeddings: shape (1, 108, 512)" in problems
    assert len(err.value.problems) == 3
    with pytest.raises(ConversionError, match="not a TranSalNet-Dense checkpoint"):
        convert_state_dict({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)},
                           source="vgg.pth")


def test_conversion_rejects_truncated_file(checkpoint_file, tmp_path):
    truncated = tmp_path / "TranSalNet_Dense.pth"
    data = checkpoint_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt") as err:
        checkpoint.convert_checkpoint("transalnet_dense", truncated, tmp_path / "out.safetensors")
    assert str(truncated) in str(err.value)
    assert not (tmp_path / "out.safetensors").exists()


def test_missing_weights_message_gives_the_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path / "empty_cache"))
    command = "python -m weights_convert --model=transalnet_dense --src="
    with pytest.raises(weights.MissingWeightsError, match=command):
        saliency.load_transalnet()
    (tmp_path / "imgs").mkdir()
    PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    result = subprocess.run(
        [sys.executable, "-m", "experiments.saliency", f"--data_dir={tmp_path / 'imgs'}",
         f"--out={tmp_path / 'maps'}"], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "AIS_JAX_CACHE": str(tmp_path / "empty_cache")})
    assert result.returncode == 1, result.stderr
    assert command in result.stderr and "transalnet_dense" in result.stderr
    assert not (tmp_path / "maps").exists()
