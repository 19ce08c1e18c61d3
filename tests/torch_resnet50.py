"""A torch ResNet-50 V1.5 with torchvision's module layout and state-dict keys, built by hand.

torchvision is not importable here; this reproduces `torchvision.models.resnet50` in eval mode
(BatchNorm with running statistics, eps 1e-5; the stride on the 3x3 convolution; a
``downsample`` = Sequential(1x1 conv, BatchNorm) on the first block of each layer), with the
same ``state_dict()`` keys (``num_batches_tracked`` included), shapes and forward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_vgg import he_normal_

LAYERS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # width, blocks, first stride


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, width: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class TorchResNet50(nn.Module):
    """conv1 / bn1 / layer1..4 / fc with torchvision's names."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (width, blocks, stride) in enumerate(LAYERS):
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, width * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(width * 4))
            layer = [Bottleneck(inplanes, width, stride, downsample)]
            layer += [Bottleneck(width * 4, width, 1, None) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = width * 4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)

    def forward_all(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: images ``[n, 3, H, W]``. Returns layer4 (NCHW), the pooled embedding, logits."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        layer4 = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        emb = torch.flatten(self.avgpool(layer4), 1)
        return {"layer4": layer4, "penultimate": emb, "logits": self.fc(emb)}


def random_resnet50(num_classes: int, seed: int) -> TorchResNet50:
    """A ResNet-50 in eval mode: He-normal weights and random BatchNorm statistics.

    Every BatchNorm gets a running mean and shift in [-0.1, 0.1), a running variance in
    [0.5, 1.5) and a scale in [0.5, 1), except each block's ``bn3`` (scale in [0.1, 0.3)), so the
    residual sum stays at a stable scale and every statistic takes part in the comparison.
    """
    model = he_normal_(TorchResNet50(num_classes).eval(), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                low, high = (0.1, 0.3) if name.endswith("bn3") else (0.5, 1.0)
                module.weight.uniform_(low, high, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model
