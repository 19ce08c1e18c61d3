"""Converted VGG-16 weights reproduce torch's forward pass (SPEC §1), in both checkpoint formats.

Relative error throughout: ``max|flax - torch| / max|torch|`` over the whole output, float32.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from flax import traverse_util
from torch_vgg import random_vgg16

from ais_jax.models.vgg16 import VGG16
from ais_jax.weights import load_vgg16
from weights_convert.checkpoint import convert_checkpoint
from weights_convert.vgg16 import CLASSIFIER_INDEX, FEATURE_INDEX

NUM_CLASSES = 565  # Ecoset's
TOLERANCE = 1e-4
REPO = Path(__file__).resolve().parents[1]


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|: error relative to the reference ``b``'s scale."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A torch VGG-16 saved in the zip format (converted in-process, as the CLI does) and in
    the legacy format (converted by the CLI itself into the cache at ``root/cache``)."""
    model = random_vgg16(NUM_CLASSES, seed=0)
    root = tmp_path_factory.mktemp("vgg16")
    files = {"zip": root / "zip.pth", "legacy": root / "legacy.pth"}
    torch.save(model.state_dict(), files["zip"])
    torch.save(model.state_dict(), files["legacy"], _use_new_zipfile_serialization=False)
    outputs = {"zip": convert_checkpoint("ecoset", files["zip"], root / "zip.safetensors")[0]}
    cache = root / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "weights_convert", "--model=ecoset", f"--src={files['legacy']}"],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "AIS_JAX_CACHE": str(cache), "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    outputs["legacy"] = cache / "weights" / "ecoset.safetensors"
    return model, files, outputs, result.stdout


def test_cli_summary_and_cache_location(converted, monkeypatch):
    _, files, outputs, stdout = converted
    assert "32 tensors, 565 classes" in stdout
    assert str(outputs["legacy"]) in stdout
    assert hashlib.sha256(files["legacy"].read_bytes()).hexdigest() in stdout
    monkeypatch.setenv("AIS_JAX_CACHE", str(outputs["legacy"].parents[1]))
    _, metadata = load_vgg16("ecoset")  # by name: the cache is where the CLI wrote
    assert metadata["source_file"] == "legacy.pth"


def test_both_formats_convert_to_the_exact_torch_tensors(converted):
    model, files, outputs, _ = converted
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    names = {**{n: f"features.{i}" for n, i in FEATURE_INDEX.items()},
             **{n: f"classifier.{i}" for n, i in CLASSIFIER_INDEX.items()}}
    for fmt, out in outputs.items():
        params, metadata = load_vgg16(out)
        assert metadata["num_classes"] == str(NUM_CLASSES)
        assert metadata["model"] == "ecoset"
        assert metadata["source_sha256"] == hashlib.sha256(files[fmt].read_bytes()).hexdigest()
        flat = traverse_util.flatten_dict(params, sep="/")
        assert len(flat) == len(state) == 32
        for path, value in flat.items():
            _, layer, kind = path.split("/")
            torch_key = f"{names[layer]}.{'weight' if kind == 'kernel' else 'bias'}"
            want = state[torch_key]
            want = want.transpose(2, 3, 1, 0) if want.ndim == 4 else want.T  # to HWIO / [in, out]
            # np.array_equal: assert_array_equal takes seconds on fc6's 100M entries.
            assert np.array_equal(np.asarray(value), want), f"{fmt}: {path} != {torch_key}"


@pytest.mark.parametrize("height, width", [(224, 224), (224, 301)])
def test_forward_matches_torch(converted, height, width):
    model, _, outputs, _ = converted
    params, _ = load_vgg16(outputs["zip"])
    images = np.random.default_rng(height + width).standard_normal((1, height, width, 3))
    images = images.astype(np.float32)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in
                model.forward_all(torch.from_numpy(images.transpose(0, 3, 1, 2))).items()}
    logits, inter = jax.jit(VGG16(NUM_CLASSES).apply)({"params": params}, images)
    got = {"conv5_3": np.asarray(inter["conv5_3"]).transpose(0, 3, 1, 2),
           "penultimate": np.asarray(inter["penultimate"]), "logits": np.asarray(logits)}
    assert got["conv5_3"].shape == (1, 512, height // 16, width // 16)
    assert got["logits"].shape == (1, NUM_CLASSES)
    # The random weights keep the network alive: a dead one would compare zeros with zeros.
    assert np.mean(want["conv5_3"] > 0) > 0.1 and np.mean(want["penultimate"] > 0) > 0.1
    for name in ("conv5_3", "penultimate", "logits"):
        err = relative_error(got[name], want[name])
        assert err <= TOLERANCE, f"{name} at {height}x{width}: relative error {err:.2e}"
