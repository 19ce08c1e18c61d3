"""torchvision VGG-16 state dict -> `ais_jax.models.vgg16` parameters, as key rules (SPEC §1)."""

from __future__ import annotations

from ais_jax.models import vgg16
from weights_convert.sequential import SequentialLayout

# torchvision's `features` index of each conv (the ReLUs and pools between hold no tensors).
FEATURE_INDEX = {
    "conv1_1": 0, "conv1_2": 2,
    "conv2_1": 5, "conv2_2": 7,
    "conv3_1": 10, "conv3_2": 12, "conv3_3": 14,
    "conv4_1": 17, "conv4_2": 19, "conv4_3": 21,
    "conv5_1": 24, "conv5_2": 26, "conv5_3": 28,
}  # fmt: skip
CLASSIFIER_INDEX = {"fc6": 0, "fc7": 3, "fc8": 6}

LAYOUT = SequentialLayout("VGG-16", FEATURE_INDEX, CLASSIFIER_INDEX, vgg16.param_shapes)
RULES = LAYOUT.rules
FC8_KEY = LAYOUT.fc8_key
num_classes = LAYOUT.num_classes
convert_state_dict = LAYOUT.convert_state_dict
