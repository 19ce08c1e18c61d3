"""A torch VGG-16 with torchvision's module layout and state-dict keys, built by hand for tests.

torchvision is not a dependency; this reproduces `torchvision.models.vgg16` (eval mode) closely
enough that its ``state_dict()`` has the same keys, shapes and forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class TorchVGG16(nn.Module):
    """``features`` / ``avgpool`` / ``classifier`` with torchvision's indices."""

    def __init__(self, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in CFG:
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
        """Args: images ``[n, 3, H, W]``. Returns conv5_3 (NCHW), penultimate and logits."""
        conv5_3 = self.features[:30](images)  # after the last ReLU, before pool5
        x = torch.flatten(self.avgpool(self.features[30:](conv5_3)), 1)
        penultimate = self.classifier[:5](x)  # fc6, ReLU, dropout, fc7, ReLU
        logits = self.classifier[5:](penultimate)
        return {"conv5_3": conv5_3, "penultimate": penultimate, "logits": logits}


def random_vgg16(num_classes: int, seed: int) -> TorchVGG16:
    """A VGG-16 in eval mode with He-normal weights, so activations survive 13 ReLU layers.

    Biases are small and positive for the same reason (no dead units in deep layers).
    """
    generator = torch.Generator().manual_seed(seed)
    model = TorchVGG16(num_classes).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                module.bias.uniform_(0.0, 0.01, generator=generator)
    return model


def constant_vgg16_state_dict(num_classes: int) -> dict[str, torch.Tensor]:
    """torchvision VGG-16 keys and shapes, tensor i filled with the value i + 1.

    Each tensor is a broadcast view of one number, so a checkpoint of it is a few KB on disk,
    and a conversion's output shows which source tensor landed where.
    """
    with torch.device("meta"):  # shapes only, nothing allocated
        keys_shapes = [(k, v.shape) for k, v in TorchVGG16(num_classes).state_dict().items()]
    return {k: torch.full((), float(i + 1)).expand(shape) for i, (k, shape) in
            enumerate(keys_shapes)}
