"""The sharded kernels on 4 (fake CPU) devices equal the single-device run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref

from ais_jax.engine import ablation, ais, selection, sharding
from ais_jax.models.vgg16 import pool_blocks

TESTS = Path(__file__).resolve().parent
TEST = np.array([1, 4, 6, 9, 12, 15, 16])
TRAIN = np.setdiff1d(np.arange(19), TEST)

# Runs in a fresh process, where XLA_FLAGS can still create 4 host devices.
SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import jax.numpy as jnp
    import numpy as np
    jax.config.update("jax_default_matmul_precision", "float32")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import test_sharding
    assert jax.device_count() == 4, jax.devices()
    np.savez(sys.argv[1], **test_sharding.run_kernels(mesh=None))
    """
)


def run_kernels(mesh=None) -> dict:
    """Every sharded kernel on a tiny problem (19 images, 10 maps: neither divides by 4)."""
    params, acts, human = ref.synthetic_problem(5, n=19, hw=(10, 12), maps=10)
    blocks = pool_blocks(jnp.asarray(acts))
    sims = ablation.ablation_similarities(params, blocks, chunk_maps=2, mesh=mesh)
    emb = ablation.ablation_embeddings(params, blocks, chunk_maps=2, mesh=mesh)
    order = selection.rank_maps(np.asarray(ais.global_ais(sims, human)))
    greedy = selection.greedy_curves(
        params, blocks, order, human, train=TRAIN, test=TEST, chunk_maps=3, mesh=mesh
    )
    return {
        "devices": np.array(len(jax.devices())),
        "full": sims.full, "global_": sims.global_, "per_image": sims.per_image, "emb": emb,
        "train_curve": greedy.train_curve, "test_curve": greedy.test_curve,
    }  # fmt: skip


def test_four_devices_equal_one(tmp_path):
    out = tmp_path / "sharded.npz"
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent),
                                    os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = np.load(out)
    assert int(sharded["devices"]) == 4
    single = run_kernels(mesh=sharding.device_mesh(jax.devices()[:1]))
    for name, value in single.items():
        if name != "devices":
            # identical up to float32 round-off (XLA may block the per-device matmuls differently)
            np.testing.assert_allclose(sharded[name], value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_mesh_helpers():
    mesh = sharding.device_mesh()
    assert mesh.axis_names == (sharding.AXIS,)
    assert sharding.resolve_mesh(None).devices.size == len(jax.local_devices())
    assert sharding.padded_size(19, 4) == 20 and sharding.padded_size(20, 4) == 20
    x = sharding.pad_axis(jnp.ones((3, 2)), 5)
    np.testing.assert_array_equal(x, np.r_[np.ones((3, 2)), np.zeros((2, 2))])
    assert sharding.split_leading(mesh).spec == jax.sharding.PartitionSpec(sharding.AXIS)
    assert sharding.replicated(mesh).spec == jax.sharding.PartitionSpec()
