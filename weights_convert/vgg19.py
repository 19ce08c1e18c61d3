"""torchvision VGG-19 state dict -> `ais_jax.models.vgg19` parameters, as key rules."""

from __future__ import annotations

from ais_jax.models import vgg19
from weights_convert.sequential import SequentialLayout

# torchvision's `features` index of each conv of configuration E.
FEATURE_INDEX = {
    "conv1_1": 0, "conv1_2": 2,
    "conv2_1": 5, "conv2_2": 7,
    "conv3_1": 10, "conv3_2": 12, "conv3_3": 14, "conv3_4": 16,
    "conv4_1": 19, "conv4_2": 21, "conv4_3": 23, "conv4_4": 25,
    "conv5_1": 28, "conv5_2": 30, "conv5_3": 32, "conv5_4": 34,
}  # fmt: skip
CLASSIFIER_INDEX = {"fc6": 0, "fc7": 3, "fc8": 6}

LAYOUT = SequentialLayout("VGG-19", FEATURE_INDEX, CLASSIFIER_INDEX, vgg19.param_shapes)
convert_state_dict = LAYOUT.convert_state_dict
