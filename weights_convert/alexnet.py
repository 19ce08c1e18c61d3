"""torchvision AlexNet state dict -> `ais_jax.models.alexnet` parameters, as key rules.

The Ecoset AlexNet (Mehrer et al. 2021, the file thingsvision loads) is a torchvision
``alexnet(num_classes=565)`` state dict: the same keys, 565 rows in ``classifier.6``.
"""

from __future__ import annotations

from ais_jax.models import alexnet
from weights_convert.sequential import SequentialLayout

# torchvision's `features` index of each conv; `classifier` starts with a dropout.
FEATURE_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
CLASSIFIER_INDEX = {"fc6": 1, "fc7": 4, "fc8": 6}

LAYOUT = SequentialLayout("AlexNet", FEATURE_INDEX, CLASSIFIER_INDEX, alexnet.param_shapes)
convert_state_dict = LAYOUT.convert_state_dict
