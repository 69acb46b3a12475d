"""PyTorch modules of the EfficientNet-space network (kept apart so parsing and costs need no torch import)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import HEAD_CHANNELS, STEM_CHANNELS, Block, Layer, NetConfig, layers


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    parts = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*parts, nn.SiLU()) if act else nn.Sequential(*parts)


class SqueezeExcite(nn.Module):
    """Global average pool, 1x1 convolution down to the squeeze channels (with bias), SiLU, 1x1 convolution back
    (with bias), sigmoid; the input scaled channel by channel."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.SiLU(),
                                  nn.Conv2d(squeeze, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MBConv(nn.Module):
    """1x1 expansion (none when e = 1), KxK depthwise convolution with the stride, squeeze-excitation where
    chosen, 1x1 projection without activation, and the input added where shapes allow."""

    def __init__(self, layer: Layer):
        super().__init__()
        parts = [conv_bn(layer.cin, layer.mid, 1)] if layer.expand != 1 else []
        parts.append(conv_bn(layer.mid, layer.mid, layer.kernel, layer.stride, groups=layer.mid))
        if layer.se:
            parts.append(SqueezeExcite(layer.mid, layer.squeeze))
        parts.append(conv_bn(layer.mid, layer.cout, 1, act=False))
        self.body = nn.Sequential(*parts)
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def calibrate_batch_norms(net: nn.Module, input_shape: tuple[int, ...], seed: int) -> nn.Module:
    """Set every batch norm's statistics to those of a seeded random batch, as training would leave them. An
    untrained network with the initial statistics (mean 0, variance 1) shrinks its activations at every
    depthwise layer: past 16 layers the logits are the classifier's bias alone, the same in any runtime, so
    no output check could fail."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: this one batch's statistics
    net.train()
    with torch.no_grad():
        net(torch.randn((2, *input_shape[1:]), generator=torch.Generator().manual_seed(seed)))
    for m in norms:
        m.momentum = 0.1
    return net.eval()


class EffNetNetwork(nn.Module):
    def __init__(self, blocks: tuple[Block, ...], cfg: NetConfig):
        super().__init__()
        self.stem = conv_bn(cfg.in_channels, STEM_CHANNELS, 3, stride=2)
        all_layers = layers(blocks)
        self.layers = nn.Sequential(*(MBConv(layer) for layer in all_layers))
        self.head = conv_bn(all_layers[-1].cout, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
