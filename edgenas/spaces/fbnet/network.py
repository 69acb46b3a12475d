"""PyTorch modules of the FBNet-space network (kept apart so parsing and costs need no torch import)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import HEAD_CHANNELS, STEM_CHANNELS, Layer, NetConfig, Op, layers, op


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    parts = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*parts, nn.ReLU()) if relu else nn.Sequential(*parts)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class Block(nn.Module):
    """An inverted-residual block: 1x1 expansion (grouped, then a channel shuffle, for `_g2`), KxK depthwise
    convolution with the layer's stride, 1x1 projection without ReLU, and the input added where shapes allow."""

    def __init__(self, layer: Layer, o: Op):
        super().__init__()
        mid = o.expand * layer.cin
        parts = [conv_bn(layer.cin, mid, 1, groups=o.groups)]
        if o.groups > 1:
            parts.append(ChannelShuffle(o.groups))
        parts += [conv_bn(mid, mid, o.kernel, layer.stride, groups=mid),
                  conv_bn(mid, layer.cout, 1, groups=o.groups, relu=False)]
        self.body = nn.Sequential(*parts)
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def skip(layer: Layer) -> nn.Module:
    """The identity where shapes allow, else a strided 1x1 convolution, BN, ReLU."""
    return nn.Identity() if layer.residual else conv_bn(layer.cin, layer.cout, 1, layer.stride)


class FBNetNetwork(nn.Module):
    def __init__(self, ops: tuple[str, ...], cfg: NetConfig):
        super().__init__()
        self.stem = conv_bn(cfg.in_channels, STEM_CHANNELS, 3)
        self.layers = nn.Sequential(*(skip(layer) if name == "skip" else Block(layer, op(name))
                                      for layer, name in zip(layers(), ops)))
        self.head = conv_bn(layers()[-1].cout, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
