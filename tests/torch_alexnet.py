"""A torch AlexNet with torchvision's module layout and state-dict keys, built by hand for tests.

torchvision is not importable here; this reproduces `torchvision.models.alexnet` (eval mode:
its dropouts are the identity) closely enough that ``state_dict()`` has the same keys, shapes
and forward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_vgg import he_normal_


class TorchAlexNet(nn.Module):
    """``features`` / ``avgpool`` / ``classifier`` with torchvision's indices (0, 3, 6, 8, 10;
    1, 4, 6)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )  # fmt: skip

    def forward_all(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: images ``[n, 3, H, W]``. Returns conv5 (NCHW, after its ReLU), penultimate
        (after fc7's ReLU) and logits."""
        conv5 = self.features[:12](images)
        x = torch.flatten(self.avgpool(self.features[12:](conv5)), 1)
        penultimate = self.classifier[:6](x)
        return {"conv5": conv5, "penultimate": penultimate, "logits": self.classifier[6:](
            penultimate)}


def random_alexnet(num_classes: int, seed: int) -> TorchAlexNet:
    """An AlexNet in eval mode with He-normal weights and small positive biases."""
    return he_normal_(TorchAlexNet(num_classes).eval(), seed)
