"""One 1-D device mesh for the ablation and greedy kernels.

The kernels take ``mesh=None`` (all local devices) or a `jax.sharding.Mesh` built here. They
split one batch axis over the mesh axis `AXIS` with `jax.shard_map`: the maps for
`ais_jax.engine.ablation.ablation_similarities` (maps are independent) and the images for
`ais_jax.engine.selection.greedy_curves` (each image's prefix sums are independent; the per-chunk
correlation rows are all-gathered). One device is the trivial case of the same code.

Multi-host (a multi-GPU cluster or a TPU slice): call ``jax.distributed.initialize()`` at the
start of every process (on Cloud TPU and SLURM it needs no arguments; elsewhere pass
``coordinator_address``, ``num_processes`` and ``process_id``), then build the mesh over
``jax.devices()`` (all processes' devices) with ``device_mesh(jax.devices())`` and pass it as
``mesh=``; every process runs the same program on the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"  # the mesh axis the kernels split their batch over


def device_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis `AXIS` over ``devices`` (default: all local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("device_mesh needs at least one device")
    return Mesh(np.asarray(devices), (AXIS,))


def resolve_mesh(mesh: Mesh | None) -> Mesh:
    """``mesh``, or a mesh over all local devices when None; checks it is 1-D over `AXIS`."""
    if mesh is None:
        return device_mesh()
    if tuple(mesh.axis_names) != (AXIS,):
        raise ValueError(f"expected a 1-D mesh with axis {AXIS!r}, got axes {mesh.axis_names}")
    return mesh


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def split_leading(mesh: Mesh) -> NamedSharding:
    """The leading axis is split over the devices."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def padded_size(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``size``."""
    return -(-size // multiple) * multiple


def pad_axis(x: jax.Array, size: int, axis: int = 0) -> jax.Array:
    """Zero-pads ``x`` along ``axis`` to ``size`` (callers strip the padding afterwards)."""
    extra = size - x.shape[axis]
    if extra < 0:
        raise ValueError(f"cannot pad axis {axis} of shape {x.shape} down to {size}")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths)
