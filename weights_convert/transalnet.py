"""TranSalNet-Dense checkpoint (``TranSalNet_Dense.pth``) -> Flax parameters, as data (SPEC §6).

The release keeps the DenseNet-161 ``features`` children in a ModuleList, so encoder keys are
``encoder.encoder.<position>...``: 0 conv0, 1 norm0, 4/6/8/10 dense blocks 1-4, 5/7/9
transitions 1-3. Decoder keys are the release's module paths. ``num_batches_tracked`` counters
are ignored (`weights_convert.checkpoint.read_state_dict` has already stripped any ``module.``).
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from ais_jax.models import transalnet
from weights_convert.keymap import ConversionError, Rule, convert, expected_shapes

_BN = (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var"))
_DENSE_BLOCK_POSITIONS = {4: 1, 6: 2, 8: 3, 10: 4}
_TRANSITION_POSITIONS = {5: 1, 7: 2, 9: 3}


def _batchnorm(prefix: str, target: str) -> list[Rule]:
    return [Rule(rf"{prefix}\.{src}", f"{target}/{dst}") for src, dst in _BN]


def _rules() -> list[Rule]:
    enc = r"encoder\.encoder"
    rules = [Rule(rf"{enc}\.0\.weight", "encoder/conv0/kernel", "conv")]
    rules += _batchnorm(rf"{enc}\.1", "encoder/norm0")
    for pos, b in _DENSE_BLOCK_POSITIONS.items():
        layer = rf"{enc}\.{pos}\.denselayer(\d+)"
        target = rf"encoder/denseblock{b}/denselayer\1"
        rules += [Rule(rf"{layer}\.conv([12])\.weight", rf"{target}/conv\2/kernel", "conv")]
        rules += _batchnorm(rf"{layer}\.norm([12])", rf"{target}/norm\2")
    for pos, b in _TRANSITION_POSITIONS.items():
        rules += [Rule(rf"{enc}\.{pos}\.conv\.weight", f"encoder/transition{b}/conv/kernel",
                       "conv")]
        rules += _batchnorm(rf"{enc}\.{pos}\.norm", f"encoder/transition{b}/norm")
    rules += [Rule(r"decoder\.conv(\d)\.weight", r"decoder/conv\1/kernel", "conv"),
              Rule(r"decoder\.conv(\d)\.bias", r"decoder/conv\1/bias")]
    rules += _batchnorm(r"decoder\.batchnorm(\d)", r"decoder/batchnorm\1")
    te, te_target = r"decoder\.TransEncoder(\d)", r"decoder/trans_encoder\1"
    rules += [
        Rule(rf"{te}\.patch_embeddings\.weight", rf"{te_target}/patch_embeddings/kernel", "conv"),
        Rule(rf"{te}\.patch_embeddings\.bias", rf"{te_target}/patch_embeddings/bias"),
        Rule(rf"{te}\.position_embeddings", rf"{te_target}/position_embeddings"),
        Rule(rf"{te}\.transformer_encoder\.encoder_norm\.weight",
             rf"{te_target}/encoder_norm/scale"),
        Rule(rf"{te}\.transformer_encoder\.encoder_norm\.bias",
             rf"{te_target}/encoder_norm/bias"),
    ]
    layer, layer_target = rf"{te}\.transformer_encoder\.layer\.(\d)", rf"{te_target}/layer\2"
    for norm in ("attention_norm", "ffn_norm"):
        rules += [Rule(rf"{layer}\.{norm}\.weight", rf"{layer_target}/{norm}/scale"),
                  Rule(rf"{layer}\.{norm}\.bias", rf"{layer_target}/{norm}/bias")]
    rules += [Rule(rf"{layer}\.attn\.(query|key|value|out)\.weight",
                   rf"{layer_target}/attn/\3/kernel", "linear"),
              Rule(rf"{layer}\.attn\.(query|key|value|out)\.bias", rf"{layer_target}/attn/\3/bias"),
              Rule(rf"{layer}\.ffn\.(fc[12])\.weight", rf"{layer_target}/\3/kernel", "linear"),
              Rule(rf"{layer}\.ffn\.(fc[12])\.bias", rf"{layer_target}/\3/bias")]
    return rules


RULES = tuple(_rules())
IGNORE = (r".*\.num_batches_tracked",)


@functools.cache
def _expected() -> dict[str, tuple[int, ...]]:
    return expected_shapes(transalnet.param_shapes())


def convert_state_dict(state_dict: Mapping[str, np.ndarray], *, source: str) -> dict:
    """Converts the authors' TranSalNet-Dense state dict to the Flax parameter pytree.

    Args:
      state_dict: checkpoint key -> array (NumPy), e.g. from
        `weights_convert.checkpoint.read_state_dict`.
      source: the checkpoint's file name, for error messages.

    Returns:
      Nested dict of float32 arrays for `ais_jax.models.transalnet.TranSalNet`.

    Raises:
      ConversionError: listing every unexpected, missing or mis-shaped key; a checkpoint whose
        encoder is not DenseNet-161 (e.g. TranSalNet-Res, or a DenseNet-121 variant) is named
        as such first.
    """
    try:
        return convert(state_dict, RULES, _expected(), source=source, ignore=IGNORE)
    except ConversionError as err:
        raise ConversionError(source, [*_encoder_hints(state_dict), *err.problems]) from None


def _encoder_hints(state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """A first line saying what the checkpoint is, when it is clearly not TranSalNet-Dense."""
    conv0 = state_dict.get("encoder.encoder.0.weight")
    if conv0 is None:
        return ["no 'encoder.encoder.0.weight' key: not a TranSalNet-Dense checkpoint "
                "(TranSalNet-Res and plain DenseNet/VGG checkpoints are not supported)"]
    want = (transalnet.INIT_FEATURES, 3, 7, 7)
    if np.shape(conv0) != want:
        return [f"encoder.encoder.0.weight has shape {tuple(np.shape(conv0))}, but the "
                f"DenseNet-161 encoder of TranSalNet-Dense needs {want}: this checkpoint is built "
                "on another encoder (DenseNet-121's first convolution has 64 filters)"]
    return []
