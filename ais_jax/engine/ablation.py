"""Ablation embeddings: the head's output with one feature map removed (SPEC §2, §12).

Everything works on the head's per-map inputs ``blocks``, ``[n, M, B]`` (M maps of B pooled
inputs each): zeroing map k of the activations zeroes exactly ``blocks[:, k]``. The head's
family is read from its parameters (`ais_jax.engine.heads.head_family`):

* ``'flatten_linear'`` (VGG-16: 512 x 49 -> 4096 -> 4096; AlexNet: 256 x 36 -> 4096 -> 4096):
  the two methods below. Sizes (M, B, fc6 width D6, embedding width D, classes) are read from
  the arrays, so the same code runs every such head and tiny test heads.
* ``'gap'`` (ResNet-50: blocks ``[n, 2048, 1]`` are the embedding): ``method='fast'`` is the
  closed form of `ais_jax.engine.gap` (no network call); ``method='vmap'`` runs the plain head
  (`ais_jax.engine.heads.head_forward`) on the masked blocks. ``fc7_path`` has no effect there.

For flatten-linear heads:

Two ways to compute the same numbers (to float32 round-off):

* ``method='vmap'``, the readable reference: `jax.vmap` of the plain head forward
  (`ais_jax.engine.heads.head_forward`) over the one-hot "zero map k" masks.
* ``method='fast'``: fc6 is linear, so ``fc6_pre(A^{not k}) = fc6_pre(A) - blocks[k] @ W6[k]``
  (one B-wide product per map instead of a full fc6); fc7 is linear too, so only the change of
  its input, ``relu(fc6_pre^{not k}) - relu(fc6_pre)``, goes through fc7 and is added to the
  unablated fc7 pre-activation. All maps of a chunk share one large ``[c*n, D6] x [D6, D]``
  matmul (fc7 on the ``n * M`` rows is the dominant cost). Pushing the change rather than the
  full input makes rounding errors scale with the (small) effect of the ablation, so they
  cancel in AIS differences.

Both run chunk by chunk over maps (all n images x a chunk of maps per step, under `lax.map`) so
that memory stays within a budget; the chunk size is derived from it or set with
``chunk_maps``. The map axis is split over the devices of a 1-D mesh
(`ais_jax.engine.sharding`).

Zero maps, exactly: a map whose block is zero in *every* image changes nothing, so it is not
computed at all (the live maps are found on the host; shapes then depend on their count, padded
to whole chunks); its ablated embedding and similarities are the full ones, bit for bit. A map
that is zero in *some* images gives, on the fast path, the full embedding for those images bit
for bit (the change pushed through fc7 is exactly 0); the similarity kernel also substitutes
the full similarities there, so per-image AIS is exactly 0 on any path.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ais_jax.engine import active_set, gap, heads, sharding
from ais_jax.engine.heads import dense, head_family
from ais_jax.engine.similarity import corr_matrix, gram, unit_rows_change
from ais_jax.models.vgg16 import PRECISION

METHODS = ("fast", "vmap")
# Bytes of one step's temporaries per device where the device does not say (CPU). Measured on a
# 2-core CPU (n = 120): steps of ~1000 rows (8 maps) ran 1.25x faster than of ~10000 rows, as
# the elementwise work between the matmuls then stays in cache.
DEFAULT_MEMORY_BUDGET = 96 << 20
_FLOAT_BYTES = 4


class HeadDims(NamedTuple):
    """Sizes of a head and its input blocks (a gap head: B = 1, no fc6 (0), D = M)."""

    n: int  # images
    maps: int  # M
    block: int  # B, fc6 inputs per map
    fc6: int  # D6
    embed: int  # D
    classes: int


class AblationSimilarities(NamedTuple):
    """Correlations of ablated embeddings; everything AIS needs, without the [n, M, D] tensor.

    The ablated similarities are stored as *changes* from the full ones: an ablation moves a
    correlation of ~0.9 by ~1e-3, and the change keeps all its float32 digits where the
    ablated correlation itself would round it to ~6e-8 of 0.9 (see `ais_jax.engine.similarity`).

    Attributes:
      full: ``[n, n]`` ``corrcoef`` of the unablated embeddings.
      global_delta: ``[M, n, n]``; ``corrcoef(E[:, k]) - full``: map k removed in every image.
      per_image_delta: ``[n, M, n]``; ``corr(E[i, k], emb_full[j]) - full[i, j]``: map k
        removed in image i only.
      zero_pairs: ``[n, M]`` bool; ``blocks[i, k]`` is all zero (ablation is a no-op there,
        and the changes are exactly 0).
    """

    full: jax.Array
    global_delta: jax.Array
    per_image_delta: jax.Array
    zero_pairs: jax.Array

    @property
    def global_(self) -> jax.Array:
        """``[M, n, n]`` ablated similarities ``corrcoef(E[:, k])`` (rounded to float32)."""
        return self.full[None] + self.global_delta

    @property
    def per_image(self) -> jax.Array:
        """``[n, M, n]`` ablated similarities ``corr(E[i, k], emb_full[j])`` (float32)."""
        return self.full[:, None] + self.per_image_delta


def head_dims(head_params: dict, blocks: jax.Array) -> HeadDims:
    """Checks that ``blocks`` ``[n, M, B]`` fits the head's parameters and returns the sizes.

    Raises:
      ValueError: head params of neither family, or blocks that do not fit them (the message
        gives both shapes).
    """
    if blocks.ndim != 3:
        raise ValueError(f"blocks must be [n, maps, block], got shape {blocks.shape}")
    n, maps, block = blocks.shape
    if head_family(head_params) == "gap":
        w = head_params["fc"]["kernel"]
        if block != 1 or w.ndim != 2 or w.shape[0] != maps:
            raise ValueError(
                f"a gap head needs blocks [n, M, 1] with M = the fc kernel's inputs; fc kernel "
                f"{w.shape}, blocks {blocks.shape}")
        return HeadDims(n, maps, 1, 0, maps, w.shape[1])
    try:
        w6, w7, w8 = (head_params[k]["kernel"] for k in ("fc6", "fc7", "fc8"))
    except (KeyError, TypeError) as e:
        raise ValueError(f"head params need fc6/fc7/fc8 kernels, missing {e}") from None
    if w6.shape[0] != maps * block:
        raise ValueError(
            f"fc6 kernel has {w6.shape[0]} inputs but blocks of shape {blocks.shape} give "
            f"{maps} x {block} = {maps * block}"
        )
    if w7.shape[0] != w6.shape[1] or w8.shape[0] != w7.shape[1]:
        raise ValueError(
            f"head kernels do not chain: fc6 {w6.shape}, fc7 {w7.shape}, fc8 {w8.shape}"
        )
    return HeadDims(n, maps, block, w6.shape[1], w7.shape[1], w8.shape[1])


def plain_head(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The head's plain forward, either family: blocks ``[n, M, B]`` -> (emb ``[n, D]``, logits).

    `ais_jax.engine.heads.head_forward` after checking the shapes.
    """
    head_dims(head_params, blocks)
    return heads.head_forward(head_params, blocks)


def _no_fc6(head_params: dict, what: str) -> None:
    if head_family(head_params) == "gap":
        raise ValueError(f"{what}: a gap head (ResNet) has no fc6; it applies to "
                         "flatten-linear heads (VGG, AlexNet) only")


def _pre_activations(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """fc6 and fc7 pre-activations of the unablated input.

    Args:
      head_params: head parameters.
      blocks: ``[n, M, B]``.

    Returns:
      (fc6_pre ``[n, D6]``, fc7_pre ``[n, D]``).
    """
    flat = blocks.reshape(blocks.shape[0], -1)  # torch (C, H, W) flatten order
    fc6_pre = dense(flat, head_params["fc6"])
    return fc6_pre, dense(jax.nn.relu(fc6_pre), head_params["fc7"])


@jax.jit
def fc6_pre_activations(head_params: dict, blocks: jax.Array) -> jax.Array:
    """``[n, D6]`` fc6 pre-activations of the unablated images (blocks ``[n, M, B]``).

    Flatten-linear heads only (ValueError for a gap head).
    """
    _no_fc6(head_params, "fc6_pre_activations")
    return _pre_activations(head_params, blocks)[0]


def fc6_active_fraction(head_params: dict, blocks: jax.Array) -> float:
    """Fraction of fc6 units active (``fc6_pre > 0``) over the unablated images.

    What decides whether the active-set fc7 pays (`ais_jax.engine.active_set`).
    Flatten-linear heads only (ValueError for a gap head).
    """
    _no_fc6(head_params, "fc6_active_fraction")
    return float(_fc6_active_fraction(head_params, jnp.asarray(blocks, jnp.float32)))


def shift_fc6_biases(head_params: dict, blocks: jax.Array,
                     active: float) -> tuple[dict, float]:
    """The head with one constant subtracted from every fc6 bias so that a fraction ``active``
    of the fc6 units is active (``fc6_pre > 0``) over ``blocks`` ``[n, M, B]``.

    A He-scaled head with zero biases has about half of fc6 active, a trained network far
    fewer; the synthetic "trained-like" heads of the benchmark and the rehearsal use this.
    Flatten-linear heads only.

    Returns:
      (head parameters with the shifted fc6 bias, the shift subtracted): the shift is the
      ``1 - active`` quantile of all ``[n, D6]`` fc6 pre-activations.
    """
    if not 0.0 < active <= 1.0:
        raise ValueError(f"active fraction must be in (0, 1], got {active}")
    _no_fc6(head_params, "shift_fc6_biases")
    pre = np.asarray(fc6_pre_activations(head_params, jnp.asarray(blocks, jnp.float32)))
    shift = np.float32(np.quantile(pre, 1.0 - active))
    fc6 = head_params["fc6"]
    return {**head_params, "fc6": {**fc6, "bias": np.asarray(fc6["bias"]) - shift}}, float(shift)


@jax.jit
def _fc6_active_fraction(head_params, blocks):
    return jnp.mean(_pre_activations(head_params, blocks)[0] > 0)


@jax.jit
def full_embeddings(head_params: dict, blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Penultimate embeddings and logits of the unablated images.

    Computed with the same operations as the fast ablation path, so that an ablation that
    changes nothing reproduces these embeddings bit for bit.

    Args:
      head_params: ``params['head']`` of either family (`ais_jax.engine.heads`).
      blocks: ``[n, M, B]`` per-map inputs (VGG-16: `ais_jax.models.vgg16.pool_blocks`).

    Returns:
      (emb ``[n, D]``, logits ``[n, classes]``); a gap head's emb is ``blocks[:, :, 0]``.
    """
    head_dims(head_params, blocks)
    if head_family(head_params) == "gap":
        return heads.head_forward(head_params, blocks)
    emb = jax.nn.relu(_pre_activations(head_params, blocks)[1])
    return emb, dense(emb, head_params["fc8"])


def relu_change(pre: jax.Array, change: jax.Array) -> jax.Array:
    """``relu(pre + change) - relu(pre)``, exact where no unit crosses zero.

    Forming ``pre + change`` in float32 rounds it to ~6e-8 of ``pre``; subtracting ``relu(pre)``
    again would leave that rounding in a result whose scale is ``change`` (an ablation moves
    the embedding by a few percent). Where the unit is active before and after, the change
    is ``change`` itself; elsewhere it is formed from the (then small) values directly.

    Args:
      pre: ``[..., d]`` pre-activations.
      change: ``[..., d]`` their change (broadcasting against ``pre``).

    Returns:
      ``[..., d]`` change of the ReLU output; exactly 0 where ``change`` is 0.
    """
    new = pre + change
    return jnp.where((pre > 0) & (new > 0), change, jax.nn.relu(new) - jax.nn.relu(pre))


def _ablated_change(
    head_params: dict, blocks: jax.Array, pre: tuple[jax.Array, jax.Array], maps: jax.Array,
    method: str, active: bool = False,
) -> jax.Array:
    """Change of every image's embedding when each of ``maps`` is removed.

    Args:
      head_params: head parameters.
      blocks: ``[n, M, B]``.
      pre: `_pre_activations` of ``blocks``.
      maps: ``[c]`` map indices.
      method: 'fast' or 'vmap'.
      active: on the fast path, multiply each image's changes by fc7 over only the fc6 units
        whose change is non-zero for some map of the chunk (`ais_jax.engine.active_set`).

    Returns:
      ``[c, n, D]``: ``out[t, i] = head(blocks[i] with map maps[t] zeroed) - head(blocks[i])``;
      exactly 0 where ``blocks[i, maps[t]]`` is all zero ('fast').
    """
    fc6_pre, fc7_pre = pre
    if method == "vmap":
        return _ablated_chunk(head_params, blocks, pre, maps, method) - jax.nn.relu(fc7_pre)[None]
    maps_n, block, d6 = blocks.shape[1], blocks.shape[2], fc6_pre.shape[-1]
    w6 = head_params["fc6"]["kernel"].reshape(maps_n, block, d6)[maps]  # [c, B, D6]
    removed = jnp.einsum("ncb,cbo->cno", blocks[:, maps], w6, precision=PRECISION)
    # fc7 is linear too: push only the change of its input through it. Rounding errors then
    # scale with the (small) change, not with the embedding, and cancel in AIS differences.
    delta = relu_change(fc6_pre[None], -removed)  # [c, n, D6]
    w7 = head_params["fc7"]["kernel"]
    if active:  # zero where the unit is inactive with and without the map: skip those
        change = jnp.swapaxes(active_set.grouped_product(jnp.swapaxes(delta, 0, 1), w7), 0, 1)
    else:  # one [c*n, D6] x [D6, D] matmul
        change = jnp.einsum("cno,od->cnd", delta, w7, precision=PRECISION)
    return relu_change(fc7_pre[None], change)


def _ablated_chunk(
    head_params: dict, blocks: jax.Array, pre: tuple[jax.Array, jax.Array], maps: jax.Array,
    method: str, active: bool = False,
) -> jax.Array:
    """Embeddings of all images with each of ``maps`` removed: ``[c, n, D]``.

    On the fast path a no-op ablation gives the full embedding exactly (its change is 0).
    """
    if method == "vmap":
        keep = 1.0 - jax.nn.one_hot(maps, blocks.shape[1], dtype=blocks.dtype)  # [c, M]
        return jax.vmap(lambda k: plain_head(head_params, blocks * k[None, :, None])[0])(keep)
    return jax.nn.relu(pre[1])[None] + _ablated_change(head_params, blocks, pre, maps, method,
                                                       active)


def _memory_budget(mesh: Mesh) -> int:
    """A quarter of an accelerator's memory, or `DEFAULT_MEMORY_BUDGET` where unknown (CPU)."""
    stats = mesh.devices.flat[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    return int(limit) // 4 if limit else DEFAULT_MEMORY_BUDGET


def choose_chunk(
    n_maps: int,
    bytes_per_map: int,
    *,
    n_devices: int = 1,
    memory_budget_bytes: int | None = None,
    chunk_maps: int | None = None,
) -> tuple[int, int]:
    """Maps per step and steps per device for ``n_maps`` maps split over ``n_devices``.

    Args:
      n_maps: maps to compute.
      bytes_per_map: temporaries of one step per map (all images).
      n_devices: devices the maps are split over.
      memory_budget_bytes: per-device budget for one step's temporaries.
      chunk_maps: an explicit chunk size (overrides the budget).

    Returns:
      (chunk, steps): ``n_devices * steps * chunk >= n_maps`` with as little padding as the
      budget allows.
    """
    n_maps = max(n_maps, 1)
    per_device = -(-n_maps // n_devices)
    if chunk_maps is not None:
        if chunk_maps < 1:
            raise ValueError(f"chunk_maps must be >= 1, got {chunk_maps}")
        chunk = min(chunk_maps, per_device)
    else:
        budget = DEFAULT_MEMORY_BUDGET if memory_budget_bytes is None else memory_budget_bytes
        cap = max(1, min(budget // max(bytes_per_map, 1), per_device))
        chunk = -(-per_device // -(-per_device // cap))  # equal chunks, least padding
    return chunk, -(-per_device // chunk)


def _bytes_per_map(dims: HeadDims, method: str, extra_per_row: int = 0) -> int:
    """Rough bytes of one step's temporaries per map (n rows), with 2x headroom."""
    per_row = dims.fc6 + 2 * dims.embed + extra_per_row
    if method == "vmap":
        per_row += dims.maps * dims.block  # the masked copy of the blocks
    return 2 * _FLOAT_BYTES * dims.n * per_row


def _map_schedule(live: np.ndarray, chunk: int, steps: int, n_devices: int) -> np.ndarray:
    """Live map indices padded (with map 0, discarded later) to ``[n_devices, steps, chunk]``."""
    idx = np.zeros(n_devices * steps * chunk, np.int32)
    idx[: live.size] = live
    return idx.reshape(n_devices, steps, chunk)


def _over_map_chunks(step, mesh: Mesh, schedule: jax.Array, *operands):
    """Runs ``step(maps [c], *operands) -> pytree of [c, ...]`` over the schedule's chunks.

    Each device takes its row of ``schedule`` (``[n_devices, steps, c]``) and maps over its
    steps; operands are replicated. Returns the outputs flattened to ``[n_devices*steps*c, ...]``
    in schedule order.
    """

    def per_device(local, *ops):  # local: [1, steps, c]
        out = jax.lax.map(lambda maps: step(maps, *ops), local[0])
        return jax.tree.map(lambda o: o[None], out)

    spec = PartitionSpec(sharding.AXIS)
    out = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(spec,) + (PartitionSpec(),) * len(operands),
        out_specs=spec,
    )(schedule, *operands)
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[3:]), out)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _live_maps(blocks: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """Host-side zero analysis: (zero_pairs ``[n, M]`` bool, live map indices ``[L]``)."""
    zero_pairs = np.asarray(jnp.all(blocks == 0, axis=-1))
    return zero_pairs, np.flatnonzero(~zero_pairs.all(axis=0)).astype(np.int32)


def _plan(head_params, blocks, method, extra_per_row, chunk_maps, memory_budget_bytes, mesh,
          fc7_path="plain"):
    """Validates the inputs and schedules the live maps over the mesh's devices in chunks.

    Args:
      extra_per_row: ``HeadDims -> int``, the caller's extra temporaries per image row.

      fc7_path: 'auto', 'active' or 'plain' (`ais_jax.engine.active_set.resolve_path`; the vmap
        reference is always plain).

    Returns:
      (blocks ``[n, M, B]`` float32, dims, mesh, zero_pairs ``[n, M]``, live maps ``[L]``,
      schedule ``[n_devices, steps, chunk]``, active: whether fc7 takes the active set).
    """
    _check_method(method)
    blocks = jnp.asarray(blocks, jnp.float32)
    dims = head_dims(head_params, blocks)
    mesh = sharding.resolve_mesh(mesh)
    n_dev = mesh.devices.size
    zero_pairs, live = _live_maps(blocks)
    active = method == "fast" and active_set.resolve_path(
        fc7_path, fc6_active_fraction(head_params, blocks), "ablation")
    if active and chunk_maps is None:  # the gather pays only on enough rows (maps) per image
        chunk_maps = active_set.GROUP_ROWS
    if memory_budget_bytes is None and chunk_maps is None:
        memory_budget_bytes = _memory_budget(mesh)
    chunk, steps = choose_chunk(
        live.size, _bytes_per_map(dims, method, extra_per_row=extra_per_row(dims)),
        n_devices=n_dev, memory_budget_bytes=memory_budget_bytes, chunk_maps=chunk_maps,
    )  # fmt: skip
    schedule = jnp.asarray(_map_schedule(live, chunk, steps, n_dev))
    return blocks, dims, mesh, zero_pairs, live, schedule, active


@functools.partial(jax.jit, static_argnames=("method", "with_logits", "mesh", "active"))
def _embeddings_kernel(head_params, blocks, schedule, position, *, method, with_logits, mesh,
                       active):
    """Returns emb ``[n, M, D]`` (and logits); ``position[k]`` = map k's row in the schedule
    output, -1 for maps zero in every image (not computed: the full result, exactly)."""
    pre = _pre_activations(head_params, blocks)

    def step(maps, head_params, blocks, pre):
        emb = _ablated_chunk(head_params, blocks, pre, maps, method, active)  # [c, n, D]
        return (emb, dense(emb, head_params["fc8"])) if with_logits else (emb,)

    outs = _over_map_chunks(step, mesh, schedule, head_params, blocks, pre)
    emb_full = jax.nn.relu(pre[1])
    fulls = (emb_full, dense(emb_full, head_params["fc8"]))
    dead = (position < 0)[None, :, None]  # [1, M, 1]
    # One gather + select + transpose per output, fused by XLA: no extra [n, M, D] copies.
    return tuple(
        jnp.where(dead, full[:, None], jnp.swapaxes(out[jnp.maximum(position, 0)], 0, 1))
        for out, full in zip(outs, fulls[: len(outs)], strict=True)  # logits only if asked
    )


def ablation_embeddings(
    head_params: dict,
    blocks: jax.Array,
    *,
    method: str = "fast",
    with_logits: bool = False,
    chunk_maps: int | None = None,
    memory_budget_bytes: int | None = None,
    mesh: Mesh | None = None,
    fc7_path: str = "auto",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """The embedding of every image with every map removed, ``E[i, k] = F(A_i^{not k})``.

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` fc6 input blocks.
      method: 'fast' (fc6 identity, SPEC §2) or 'vmap' (vmapped plain head, the reference).
      with_logits: also return the ablated logits.
      chunk_maps: maps per step (default: from the memory budget).
      memory_budget_bytes: per-device budget for one step's temporaries.
      mesh: 1-D device mesh (`ais_jax.engine.sharding`); None = all local devices.
      fc7_path: 'auto' (active-set fc7 on CPU for sparse fc6), 'active' or 'plain'
        (`ais_jax.engine.active_set`; the same numbers up to float32 round-off).

    Returns:
      emb ``[n, M, D]`` (and logits ``[n, M, classes]`` if ``with_logits``). A gap head's
      ``[n, M, M]`` has, on the fast path, exactly the full embedding with coordinate k zeroed.
    """
    if head_family(head_params) == "gap":
        return _gap_ablation_embeddings(head_params, blocks, method, with_logits, chunk_maps,
                                        fc7_path)
    blocks, dims, mesh, _, live, schedule, active = _plan(
        head_params, blocks, method, lambda d: d.classes if with_logits else 0,
        chunk_maps, memory_budget_bytes, mesh, fc7_path,
    )  # fmt: skip
    position = np.full(dims.maps, -1, np.int32)
    position[live] = np.arange(live.size, dtype=np.int32)
    results = _embeddings_kernel(
        head_params, blocks, schedule, jnp.asarray(position),
        method=method, with_logits=with_logits, mesh=mesh, active=active,
    )  # fmt: skip
    return results if with_logits else results[0]


# Maps per sub-step of the similarity work when fc7 runs on larger (active-set) chunks: the
# blocked grams' temporaries grow with the maps per step.
SIM_SUBCHUNK = 8


def _change_similarities(maps, change, emb, zero_pairs):
    """(global ``[c, n, n]``, per-image ``[c, n, n]``) changes of the correlations.

    Args:
      maps: ``[c]`` map indices.
      change: ``[c, n, D]`` change of every image's embedding when each map is removed.
      emb: ``[n, D]`` unablated embeddings.
      zero_pairs: ``[n, M]`` bool, all-zero blocks.
    """
    # Changes of the unit rows and of the correlations, computed from the change of the
    # embeddings so that their rounding errors scale with the (small) effect of the
    # ablation, not with the correlations (~0.9); plain dots suffice then.
    u, du = unit_rows_change(emb[None], change)  # [c, n, D] each
    # corr(E[i, k], e_j) - corr(e_i, e_j) = du_i . u_j. Even these dots of small changes
    # need blocked sums: a plain XLA dot leaves ~6e-8 here (measured), i.e. ~7e-7 of
    # per-image AIS; in blocks of 16 ~1e-8 (per-image AIS 8e-8), of 32 per-image AIS
    # 1.1e-7 at 2/3 of the extra cost, which keeps the kernel within 10 % of plain dots.
    per = gram(du, u, block=32)
    # u'_i.u'_j - u_i.u_j = du_i.u_j + du_j.u_i + du_i.du_j.
    glob = per + jnp.swapaxes(per, 1, 2) + gram(du, du, block=32)
    # An all-zero block makes ablation a no-op: its changes are 0, exactly.
    zero = zero_pairs[:, maps].T  # [c, n]
    glob = jnp.where(zero[:, :, None] & zero[:, None, :], 0.0, glob)
    per = jnp.where(zero[:, :, None], 0.0, per)
    return glob, per


@functools.partial(jax.jit, static_argnames=("method", "mesh", "active"))
def _similarities_kernel(head_params, blocks, schedule, zero_pairs, *, method, mesh, active):
    pre = _pre_activations(head_params, blocks)
    emb = jax.nn.relu(pre[1])  # [n, D], as `full_embeddings`
    full = corr_matrix(emb)

    def step(maps, head_params, blocks, pre, emb, zero_pairs):
        change = _ablated_change(head_params, blocks, pre, maps, method, active)  # [c, n, D]
        c = maps.shape[0]
        if c > SIM_SUBCHUNK and c % SIM_SUBCHUNK == 0:
            def sub(x):
                return x.reshape(c // SIM_SUBCHUNK, SIM_SUBCHUNK, *x.shape[1:])
            glob, per = jax.lax.map(lambda a: _change_similarities(*a, emb, zero_pairs),
                                    (sub(maps), sub(change)))
            return glob.reshape(c, *glob.shape[2:]), per.reshape(c, *per.shape[2:])
        return _change_similarities(maps, change, emb, zero_pairs)

    glob, per = _over_map_chunks(step, mesh, schedule, head_params, blocks, pre, emb, zero_pairs)
    return full, glob, per


def ablation_similarities(
    head_params: dict,
    blocks: jax.Array,
    *,
    method: str = "fast",
    chunk_maps: int | None = None,
    memory_budget_bytes: int | None = None,
    mesh: Mesh | None = None,
    fc7_path: str = "auto",
) -> AblationSimilarities:
    """Correlation matrices of the ablated embeddings, without materialising ``E``.

    For n = 120 and M = 512, each output is ~29 MB where ``E`` would be 1 GB.

    Args:
      head_params: ``params['head']``.
      blocks: ``[n, M, B]`` fc6 input blocks.
      method: 'fast' or 'vmap' (see module docstring).
      chunk_maps: maps per step (default: from the memory budget).
      memory_budget_bytes: per-device budget for one step's temporaries.
      mesh: 1-D device mesh; None = all local devices. The maps are split over it (a gap
        head's closed forms, O(M n^2), run on one device).
      fc7_path: 'auto' (active-set fc7 on CPU for sparse fc6), 'active' or 'plain'
        (`ais_jax.engine.active_set`; the same numbers up to float32 round-off).

    Returns:
      `AblationSimilarities` (full ``[n, n]``, global_delta ``[M, n, n]``, per_image_delta
      ``[n, M, n]``, zero_pairs ``[n, M]``).
    """
    if head_family(head_params) == "gap" and method == "fast":
        return _gap_similarities(head_params, blocks, chunk_maps, memory_budget_bytes, fc7_path)
    blocks, dims, mesh, zero_pairs, live, schedule, active = _plan(
        head_params, blocks, method, lambda d: 2 * d.n, chunk_maps, memory_budget_bytes, mesh,
        fc7_path,
    )  # fmt: skip
    kernel = (_plain_similarities_kernel if head_family(head_params) == "gap"
              else functools.partial(_similarities_kernel, method=method, active=active))
    full, glob, per = kernel(head_params, blocks, schedule, jnp.asarray(zero_pairs), mesh=mesh)
    # Maps zero in every image are not computed: their changes are 0, exactly.
    global_delta = jnp.zeros((dims.maps, dims.n, dims.n), full.dtype).at[live].set(
        glob[: live.size])
    per_image_delta = jnp.zeros((dims.n, dims.maps, dims.n), full.dtype).at[:, live].set(
        jnp.swapaxes(per[: live.size], 0, 1))
    return AblationSimilarities(full, global_delta, per_image_delta, jnp.asarray(zero_pairs))


# ---- gap heads (ResNet): closed forms and the plain reference (`ais_jax.engine.gap`) ----

# Maps per step of the gap closed forms: [c, n, n] temporaries, ~7 MB each at n = 120.
GAP_CHUNK = 128


def _check_fc7_path(fc7_path: str) -> None:
    if fc7_path not in active_set.PATHS:
        raise ValueError(f"fc7 path must be one of {active_set.PATHS}, got {fc7_path!r}")


def _gap_similarities(head_params, blocks, chunk_maps, memory_budget_bytes, fc7_path):
    """`ablation_similarities` of a gap head by the closed forms (`ais_jax.engine.gap`)."""
    _check_fc7_path(fc7_path)
    blocks = jnp.asarray(blocks, jnp.float32)
    dims = head_dims(head_params, blocks)
    if chunk_maps is None:
        budget = DEFAULT_MEMORY_BUDGET if memory_budget_bytes is None else memory_budget_bytes
        chunk_maps = min(GAP_CHUNK, max(1, budget // (8 * _FLOAT_BYTES * dims.n * dims.n)))
    chunk, _ = choose_chunk(dims.maps, 1, chunk_maps=chunk_maps)
    full, glob, per = gap.ablation_changes(gap.embeddings(blocks), chunk=chunk)
    zero_pairs, _ = _live_maps(blocks)
    return AblationSimilarities(full, glob, per, jnp.asarray(zero_pairs))


@functools.partial(jax.jit, static_argnames=("mesh",))
def _plain_similarities_kernel(head_params, blocks, schedule, zero_pairs, *, mesh):
    """The reference for any head: zero each map, run `heads.head_forward`, correlate."""
    emb = heads.head_forward(head_params, blocks)[0]  # [n, D]
    full = corr_matrix(emb)

    def step(maps, head_params, blocks, emb, zero_pairs):
        keep = 1.0 - jax.nn.one_hot(maps, blocks.shape[1], dtype=blocks.dtype)  # [c, M]
        ablated = jax.vmap(
            lambda k: heads.head_forward(head_params, blocks * k[None, :, None])[0])(keep)
        return _change_similarities(maps, ablated - emb[None], emb, zero_pairs)

    glob, per = _over_map_chunks(step, mesh, schedule, head_params, blocks, emb, zero_pairs)
    return full, glob, per


@functools.partial(jax.jit, static_argnames=("method", "chunk"))
def _gap_embeddings_kernel(head_params, blocks, *, method, chunk):
    x, logits = heads.head_forward(head_params, blocks)  # [n, M], [n, C]
    m = x.shape[1]
    keep = 1.0 - jnp.eye(m, dtype=x.dtype)  # [M, M]: row k zeroes map k
    if method == "vmap":
        emb, out = jax.lax.map(
            lambda k: heads.head_forward(head_params, blocks * k[None, :, None]), keep,
            batch_size=chunk)  # [M, n, M], [M, n, C]
        return jnp.swapaxes(emb, 0, 1), jnp.swapaxes(out, 0, 1)
    # Zeroing coordinate k of the embedding moves the logits by -x_k W[k].
    removed = x[:, :, None] * head_params["fc"]["kernel"][None]  # [n, M, C]
    return x[:, None, :] * keep[None], logits[:, None, :] - removed


def _gap_ablation_embeddings(head_params, blocks, method, with_logits, chunk_maps, fc7_path):
    """`ablation_embeddings` of a gap head: the embeddings with each coordinate zeroed."""
    _check_method(method)
    _check_fc7_path(fc7_path)
    blocks = jnp.asarray(blocks, jnp.float32)
    dims = head_dims(head_params, blocks)
    chunk, _ = choose_chunk(dims.maps, 1, chunk_maps=chunk_maps or GAP_CHUNK)
    emb, logits = _gap_embeddings_kernel(head_params, blocks, method=method, chunk=chunk)
    return (emb, logits) if with_logits else emb
