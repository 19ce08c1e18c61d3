"""torchvision ResNet-50 state dict -> `ais_jax.models.resnet50` parameters, as key rules.

``conv1``, ``bn1``, ``layer{L}.{b}.{conv,bn}{1,2,3}``, ``layer{L}.0.downsample.{0,1}`` and
``fc`` (torchvision's names) go to ``trunk/conv1``, ``trunk/bn1``,
``trunk/layer{L}_block{b}/{conv,bn}{1,2,3}``, ``.../downsample_{conv,bn}`` and ``head/fc``;
BatchNorm ``weight``, ``bias``, ``running_mean``, ``running_var`` to ``scale``, ``bias``,
``mean``, ``var``; ``num_batches_tracked`` counters are dropped. The Ecoset ResNet-50 (Mehrer et
al. 2021, the file thingsvision loads) is a torchvision ``resnet50(num_classes=565)`` state dict.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ais_jax.models import resnet50
from weights_convert.keymap import ConversionError, Rule, convert, expected_shapes

_BN = (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var"))
_BLOCK, _BLOCK_TARGET = r"layer([1-4])\.(\d+)", r"trunk/layer\1_block\2"

RULES = (
    Rule(r"conv1\.weight", "trunk/conv1/kernel", "conv"),
    *(Rule(rf"bn1\.{src}", f"trunk/bn1/{dst}") for src, dst in _BN),
    Rule(rf"{_BLOCK}\.conv([123])\.weight", rf"{_BLOCK_TARGET}/conv\3/kernel", "conv"),
    *(Rule(rf"{_BLOCK}\.bn([123])\.{src}", rf"{_BLOCK_TARGET}/bn\3/{dst}") for src, dst in _BN),
    Rule(rf"{_BLOCK}\.downsample\.0\.weight", rf"{_BLOCK_TARGET}/downsample_conv/kernel", "conv"),
    *(Rule(rf"{_BLOCK}\.downsample\.1\.{src}", rf"{_BLOCK_TARGET}/downsample_bn/{dst}")
      for src, dst in _BN),
    Rule(r"fc\.weight", "head/fc/kernel", "linear"),
    Rule(r"fc\.bias", "head/fc/bias"),
)
IGNORE = (r"(.*\.)?num_batches_tracked",)
FC_KEY = "fc.weight"


def num_classes(state_dict: Mapping[str, np.ndarray], *, source: str) -> int:
    """The number of classes, read from ``fc.weight`` ([classes, 2048]).

    Raises:
      ConversionError: if the key is missing or not a matrix; a checkpoint without any
        ResNet key gets the top message "not a ResNet-50 checkpoint".
    """
    if FC_KEY in state_dict and np.ndim(state_dict[FC_KEY]) == 2:
        return int(np.shape(state_dict[FC_KEY])[0])
    problem = (f"{FC_KEY}: shape {tuple(np.shape(state_dict[FC_KEY]))}, expected "
               "[classes, 2048]") if FC_KEY in state_dict else f"{FC_KEY}: missing"
    raise ConversionError(source, [*_not_resnet(state_dict), problem])


def _not_resnet(state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """A leading problem line when no key of the checkpoint looks like torchvision's ResNet."""
    if any(key.startswith(("conv1.", "bn1.", "layer")) for key in state_dict):
        return []
    keys = list(state_dict)
    shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    return [
        f"not a ResNet-50 checkpoint: none of its {len(keys)} keys is a torchvision ResNet key "
        f"(conv1.*, bn1.*, layerN.*, fc.*); it has {shown or 'no keys'}"
    ]


def convert_state_dict(state_dict: Mapping[str, np.ndarray], *, source: str) -> dict:
    """Converts a torchvision-layout ResNet-50 state dict (any number of classes).

    Args:
      state_dict: key -> array, e.g. from `weights_convert.checkpoint.read_state_dict`.
      source: the checkpoint file, named in errors.

    Returns:
      The `ais_jax.models.resnet50` parameter tree, float32.

    Raises:
      ConversionError: listing every unknown, missing or mis-shaped tensor by key (a
        ResNet-18/34, whose blocks have no conv3, shows as many missing tensors).
    """
    classes = num_classes(state_dict, source=source)
    expected = expected_shapes(resnet50.param_shapes(classes))
    try:
        return convert(state_dict, RULES, expected, source=source, ignore=IGNORE)
    except ConversionError as e:
        raise ConversionError(source, [*_not_resnet(state_dict), *e.problems]) from None
