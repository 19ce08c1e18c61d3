"""A PyTorch TranSalNet-Dense written from SPEC §6, with the release's module names.

Test helper only: the reference the Flax port is compared against. The DenseNet encoder uses
torchvision's names (``conv0``, ``norm0``, ``denseblock{b}.denselayer{i}.{norm1,conv1,...}``,
``transition{b}.{norm,conv,pool}``) held in a ModuleList as the release does (so checkpoint
keys are ``encoder.encoder.<position>...``); the decoder's names are the release's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HIDDEN_HEADS = ((768, 12), (768, 12), (512, 8))


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int = 4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        h = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(h)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, c_in: int, growth: int):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(c_in + i * growth, growth))

    def forward(self, x):
        for layer in self.values():
            x = torch.cat([x, layer(x)], 1)
        return x


class Transition(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(c_in))
        self.add_module("relu", nn.ReLU())
        self.add_module("conv", nn.Conv2d(c_in, c_out, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, 2))


def densenet_features(growth: int, blocks: tuple[int, ...], init: int) -> tuple[list, list]:
    """torchvision DenseNet ``features`` children without ``norm5``, and the block widths."""
    layers = [nn.Conv2d(3, init, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(init),
              nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
    c, widths = init, []
    for b, n in enumerate(blocks):
        layers.append(DenseBlock(n, c, growth))
        c += n * growth
        widths.append(c)
        if b < len(blocks) - 1:
            layers.append(Transition(c, c // 2))
            c //= 2
    return layers, widths


class Encoder(nn.Module):
    def __init__(self, growth=48, blocks=(6, 12, 36, 24), init=96):
        super().__init__()
        layers, self.widths = densenet_features(growth, blocks, init)
        self.encoder = nn.ModuleList(layers)

    def forward(self, x):
        outs = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in (6, 8, 10):  # dense blocks 2, 3, 4
                outs.append(x)
        return outs


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(hidden, hidden) for _ in range(4))

    def forward(self, x):
        n, t, c = x.shape
        def split(y):
            return y.view(n, t, self.heads, c // self.heads).permute(0, 2, 1, 3)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        return self.out((probs @ v).permute(0, 2, 1, 3).reshape(n, t, c))


class Mlp(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.ffn_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.ffn = Mlp(hidden)

    def forward(self, x):
        x = x + self.attn(self.attention_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class TransformerStack(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.layer = nn.ModuleList([Block(hidden, heads) for _ in range(2)])
        self.encoder_norm = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, x):
        for block in self.layer:
            x = block(x)
        return self.encoder_norm(x)


class TransEncoder(nn.Module):
    def __init__(self, c_in, tokens, hidden, heads):
        super().__init__()
        self.patch_embeddings = nn.Conv2d(c_in, hidden, 1)
        self.position_embeddings = nn.Parameter(torch.zeros(1, tokens, hidden))
        self.transformer_encoder = TransformerStack(hidden, heads)

    def forward(self, x):
        n, _, h, w = x.shape
        tokens = self.patch_embeddings(x).flatten(2).transpose(1, 2) + self.position_embeddings
        return self.transformer_encoder(tokens).permute(0, 2, 1).reshape(n, -1, h, w)


class Decoder(nn.Module):
    def __init__(self, widths):
        super().__init__()
        chans = (768, 768, 512, 256, 128, 64, 32, 1)
        for i in range(7):
            self.add_module(f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], 3, padding=1))
        for i in range(6):
            self.add_module(f"batchnorm{i + 1}", nn.BatchNorm2d(chans[i + 1]))
        (h1, n1), (h2, n2), (h3, n3) = HIDDEN_HEADS
        self.TransEncoder1 = TransEncoder(widths[3], 9 * 12, h1, n1)
        self.TransEncoder2 = TransEncoder(widths[2], 18 * 24, h2, n2)
        self.TransEncoder3 = TransEncoder(widths[1], 36 * 48, h3, n3)
        self.outputs = {}  # the last forward's transformer outputs, for block-by-block tests

    def forward(self, feats):
        x3, x4, x5 = feats
        def up(x):
            return F.interpolate(x, scale_factor=2, mode="nearest")
        def cbr(i, x):
            return F.relu(getattr(self, f"batchnorm{i}")(getattr(self, f"conv{i}")(x)))
        t1, t2, t3 = self.TransEncoder1(x5), self.TransEncoder2(x4), self.TransEncoder3(x3)
        self.outputs = {"trans_encoder1": t1, "trans_encoder2": t2, "trans_encoder3": t3}
        x = up(cbr(1, t1))
        x = up(cbr(2, F.relu(x * t2)))
        x = up(cbr(3, F.relu(x * t3)))
        x = up(cbr(4, x))
        x = cbr(5, x)
        x = cbr(6, up(x))
        return torch.sigmoid(self.conv7(x))


class TranSalNet(nn.Module):
    def __init__(self, growth=48, blocks=(6, 12, 36, 24), init=96):
        super().__init__()
        self.encoder = Encoder(growth, blocks, init)
        self.decoder = Decoder(self.encoder.widths)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Random weights with non-trivial BatchNorm statistics, at scales that keep activations O(1).

    Also sets every ``num_batches_tracked`` to a nonzero count, as in a trained checkpoint.
    """
    g = torch.Generator().manual_seed(seed)
    def rand(shape):
        return torch.rand(shape, generator=g)
    def randn(shape):
        return torch.randn(shape, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.copy_(randn(m.weight.shape) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(0.1 * randn(m.bias.shape))
            elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
                m.weight.copy_(0.5 + rand(m.weight.shape))
                m.bias.copy_(0.2 * randn(m.bias.shape))
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(0.3 * randn(m.running_mean.shape))
                    m.running_var.copy_(0.5 + 2 * rand(m.running_var.shape))
                    m.num_batches_tracked.fill_(1234)
            elif isinstance(m, TransEncoder):
                m.position_embeddings.copy_(0.5 * randn(m.position_embeddings.shape))
    return model.eval()


def state_dict_numpy(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
