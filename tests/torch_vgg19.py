"""A torch VGG-19 (torchvision configuration E) with torchvision's module layout and state-dict
keys, built by hand for tests: `torch_vgg.TorchVGG16` with four more convolutions."""

from __future__ import annotations

from torch_vgg import TorchVGG16, he_normal_

CFG_E = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M")


def torch_vgg19(num_classes: int) -> TorchVGG16:
    """torchvision's ``vgg19`` layout (``features.0`` ... ``features.34``, ``classifier.0/3/6``);
    ``forward_all`` names the ablated maps ``conv5_4``."""
    return TorchVGG16(num_classes, cfg=CFG_E, last_conv="conv5_4")


def random_vgg19(num_classes: int, seed: int) -> TorchVGG16:
    """A VGG-19 in eval mode with He-normal weights and small positive biases."""
    return he_normal_(torch_vgg19(num_classes).eval(), seed)
