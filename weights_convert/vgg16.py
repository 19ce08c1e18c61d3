"""torchvision VGG-16 state dict -> `ais_jax.models.vgg16` parameters, as key rules (SPEC §1)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ais_jax.models import vgg16
from weights_convert.keymap import ConversionError, Rule, convert, expected_shapes

# torchvision's `features` index of each conv (the ReLUs and pools between hold no tensors).
FEATURE_INDEX = {
    "conv1_1": 0, "conv1_2": 2,
    "conv2_1": 5, "conv2_2": 7,
    "conv3_1": 10, "conv3_2": 12, "conv3_3": 14,
    "conv4_1": 17, "conv4_2": 19, "conv4_3": 21,
    "conv5_1": 24, "conv5_2": 26, "conv5_3": 28,
}  # fmt: skip
CLASSIFIER_INDEX = {"fc6": 0, "fc7": 3, "fc8": 6}

# The fc6 transpose keeps its 25088 rows in torch's (C, H, W) order, which VGG16Head expects.
RULES = tuple(
    Rule(rf"features\.{i}\.weight", f"trunk/{name}/kernel", "conv")
    for name, i in FEATURE_INDEX.items()
) + tuple(
    Rule(rf"features\.{i}\.bias", f"trunk/{name}/bias") for name, i in FEATURE_INDEX.items()
) + tuple(
    Rule(rf"classifier\.{i}\.weight", f"head/{name}/kernel", "linear")
    for name, i in CLASSIFIER_INDEX.items()
) + tuple(
    Rule(rf"classifier\.{i}\.bias", f"head/{name}/bias") for name, i in CLASSIFIER_INDEX.items()
)

FC8_KEY = f"classifier.{CLASSIFIER_INDEX['fc8']}.weight"


def num_classes(state_dict: Mapping[str, np.ndarray], *, source: str) -> int:
    """The number of classes, read from ``classifier.6.weight`` ([classes, 4096]).

    Raises:
      ConversionError: if the key is missing or not a matrix; a checkpoint without any
        VGG-16 key gets the top message "not a VGG-16 checkpoint".
    """
    if FC8_KEY in state_dict and np.ndim(state_dict[FC8_KEY]) == 2:
        return int(np.shape(state_dict[FC8_KEY])[0])
    problem = (f"{FC8_KEY}: shape {tuple(np.shape(state_dict[FC8_KEY]))}, expected "
               "[classes, 4096]") if FC8_KEY in state_dict else f"{FC8_KEY}: missing"
    raise ConversionError(source, [*_not_vgg16(state_dict), problem])


def _not_vgg16(state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """A leading problem line when no key of the checkpoint looks like torchvision's VGG-16."""
    if any(key.startswith(("features.", "classifier.")) for key in state_dict):
        return []
    keys = list(state_dict)
    shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    return [
        f"not a VGG-16 checkpoint: none of its {len(keys)} keys is a torchvision VGG-16 key "
        f"(features.N.*, classifier.N.*); it has {shown or 'no keys'}"
    ]


def convert_state_dict(state_dict: Mapping[str, np.ndarray], *, source: str) -> dict:
    """Converts a torchvision-layout VGG-16 state dict (any number of classes).

    Args:
      state_dict: key -> array, e.g. from `weights_convert.checkpoint.read_state_dict`.
      source: the checkpoint file, named in errors.

    Returns:
      ``{'trunk': {'conv1_1': {'kernel': [3, 3, 3, 64], 'bias': [64]}, ...},
      'head': {'fc6': {'kernel': [25088, 4096], ...}, 'fc7': ..., 'fc8': ...}}`` float32.

    Raises:
      ConversionError: listing every unknown, missing or mis-shaped tensor by key.
    """
    classes = num_classes(state_dict, source=source)
    expected = expected_shapes(vgg16.param_shapes(classes))
    try:
        return convert(state_dict, RULES, expected, source=source)
    except ConversionError as e:
        raise ConversionError(source, [*_not_vgg16(state_dict), *e.problems]) from None
