"""A torch VGG-16 with torchvision's module layout and state-dict keys, built by hand for tests.

torchvision is not a dependency; this reproduces `torchvision.models.vgg16` (eval mode) closely
enough that its ``state_dict()`` has the same keys, shapes and forward pass.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class TorchVGG16(nn.Module):
    """``features`` / ``avgpool`` / ``classifier`` with torchvision's indices."""

    def __init__(self, num_classes: int, cfg: tuple = CFG, last_conv: str = "conv5_3"):
        super().__init__()
        self.last_conv = last_conv  # the name of the ablated layer in `forward_all`
        layers: list[nn.Module] = []
        channels = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )  # fmt: skip

    def forward_all(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: images ``[n, 3, H, W]``. Returns the last conv's maps (NCHW, under the name
        ``last_conv``), penultimate and logits."""
        maps = self.features[:-1](images)  # after the last ReLU, before pool5
        x = torch.flatten(self.avgpool(self.features[-1:](maps)), 1)
        penultimate = self.classifier[:5](x)  # fc6, ReLU, dropout, fc7, ReLU
        logits = self.classifier[5:](penultimate)
        return {self.last_conv: maps, "penultimate": penultimate, "logits": logits}


def random_vgg16(num_classes: int, seed: int) -> TorchVGG16:
    """A VGG-16 in eval mode with He-normal weights, so activations survive 13 ReLU layers.

    Biases are small and positive for the same reason (no dead units in deep layers).
    """
    return he_normal_(TorchVGG16(num_classes).eval(), seed)


def he_normal_(model: nn.Module, seed: int) -> nn.Module:
    """Fills every Conv2d / Linear of ``model`` in place: He-normal weights, biases in
    [0, 0.01); returns ``model``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(0.0, 0.01, generator=generator)
    return model


def constant_vgg16_state_dict(num_classes: int) -> dict[str, torch.Tensor]:
    """torchvision VGG-16 keys and shapes, tensor i filled with the value i + 1.

    Each tensor is a broadcast view of one number, so a checkpoint of it is a few KB on disk,
    and a conversion's output shows which source tensor landed where.
    """
    return constant_state_dict(lambda: TorchVGG16(num_classes))


def constant_state_dict(build: Callable[[], nn.Module]) -> dict[str, torch.Tensor]:
    """The keys, shapes and dtypes of ``build()``'s state dict, tensor i filled with i + 1 (as
    `constant_vgg16_state_dict`; integer tensors such as ``num_batches_tracked`` stay integer)."""
    with torch.device("meta"):  # shapes only, nothing allocated
        keys = [(k, v.shape, v.dtype) for k, v in build().state_dict().items()]
    return {k: torch.full((), i + 1, dtype=dtype).expand(shape) for i, (k, shape, dtype) in
            enumerate(keys)}
