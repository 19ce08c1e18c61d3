"""Writes TranSalNet-Dense saliency maps for a folder of images (Aim 3, SPEC §6).

  python -m weights_convert --model=transalnet_dense --src=/path/TranSalNet_Dense.pth  # once
  python -m experiments.saliency --data_dir=/data/peterson/animals --out=/results/sal/animals

Writes ``<out>/<image stem>.npy`` (float32 [H, W] in [0, 1]) per image and
``<out>/image_ids.json``; maps already present are kept unless their image changed, so an
interrupted run resumes.
"""

from __future__ import annotations

from absl import app, flags

from ais_jax import preflight
from ais_jax.explain import saliency

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder of images (or one holding images/).")
_OUT = flags.DEFINE_string("out", None, "Output folder for the .npy maps.")
_WEIGHTS = flags.DEFINE_string(
    "weights", "transalnet_dense",
    "Converted weights: the cached model name, or a .safetensors file.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Images per forward pass.", lower_bound=1)
flags.mark_flags_as_required(["data_dir", "out"])


def main(argv: list[str]) -> int:
    preflight.refuse_leftovers(argv)
    # Every check that the inputs allow, before the weights are read: every image decoded.
    saliency.image_shapes(saliency.image_paths(_DATA_DIR.value))
    out = preflight.check_out_dir(_OUT.value, data=[_DATA_DIR.value])
    params, meta = saliency.load_transalnet(_WEIGHTS.value)
    run = saliency.write_saliency_maps(
        _DATA_DIR.value, out, params, weights_sha256=meta["tensors_sha256"],
        batch_size=_BATCH_SIZE.value)
    changed = f" ({len(run.changed)} of them for changed images)" if run.changed else ""
    print(f"{len(run.image_ids)} images: {len(run.computed)} saliency maps written to "
          f"{_OUT.value}{changed}, {len(run.skipped)} already there (weights: "
          f"{meta['source_file']}).")
    if run.computed:
        print(f"compile {run.compile_seconds:.1f} s; {run.seconds_per_image:.2f} s per image "
              f"after compilation (batch size {_BATCH_SIZE.value}).")
    return 0


if __name__ == "__main__":
    app.run(preflight.run_cli(main))
