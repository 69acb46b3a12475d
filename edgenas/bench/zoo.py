"""Public CNN architectures of five families, written out in PyTorch as their papers and the reference
implementations define them (layer for layer, channel for channel; random weights: no weights download offline),
for `bench models` to treat as a user's own models. Each is a factory that `--model edgenas.bench.zoo:NAME`
takes, and `ZOO` lists them with their parameter counts at 1,000 classes, which the tests check.

- `resnet18`: residual basic blocks (He et al. 2016);
- `mobilenet_v2`: inverted residuals, depthwise 3x3, ReLU6 (Sandler et al. 2018);
- `squeezenet1_1`: fire modules, concatenations, ceil-mode pooling (Iandola et al. 2016, v1.1);
- `shufflenet_v2`: channel split and shuffle (Ma et al. 2018, 1.0x);
- `efficientnet_b0`: MBConv with squeeze-excitation and SiLU (Tan & Le 2019).
"""
from __future__ import annotations

import torch
from torch import nn

CLASSES = 1000


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU):
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([act()] if act else []))


class _Basic(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c_in, c_out, 3, stride), _conv_bn(c_out, c_out, 3, act=None))
        self.skip = _conv_bn(c_in, c_out, 1, stride, act=None) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x):
        return (self.body(x) + self.skip(x)).relu()


def resnet18() -> nn.Module:
    layers, c = [_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Basic(c, width, stride), _Basic(width, width, 1)]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, CLASSES))


class _Inverted(nn.Module):
    """MobileNetV2's inverted residual; with `se`, EfficientNet's MBConv (squeeze-excitation, SiLU)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, k: int = 3, se: bool = False):
        super().__init__()
        act = nn.SiLU if se else nn.ReLU6
        hidden = c_in * expand
        layers = [_conv_bn(c_in, hidden, 1, act=act)] if expand != 1 else []
        layers.append(_conv_bn(hidden, hidden, k, stride, groups=hidden, act=act))
        if se:
            squeezed = max(1, c_in // 4)
            layers.append(_SqueezeExcite(hidden, squeezed))
        layers.append(_conv_bn(hidden, c_out, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class _SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeezed: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, squeezed, 1), nn.SiLU(),
                                  nn.Conv2d(squeezed, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


def mobilenet_v2() -> nn.Module:
    layers, c = [_conv_bn(3, 32, 3, 2, act=nn.ReLU6)], 32
    for t, width, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            layers.append(_Inverted(c, width, s if i == 0 else 1, t))
            c = width
    return nn.Sequential(*layers, _conv_bn(c, 1280, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(1280, CLASSES))


def efficientnet_b0() -> nn.Module:
    layers, c = [_conv_bn(3, 32, 3, 2, act=nn.SiLU)], 32
    for t, k, width, n, s in ((1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2), (6, 3, 80, 3, 2),
                              (6, 5, 112, 3, 1), (6, 5, 192, 4, 2), (6, 3, 320, 1, 1)):
        for i in range(n):
            layers.append(_Inverted(c, width, s if i == 0 else 1, t, k, se=True))
            c = width
    return nn.Sequential(*layers, _conv_bn(c, 1280, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(1280, CLASSES))


class _Fire(nn.Module):
    def __init__(self, c_in: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU())
        self.one = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.three = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat((self.one(s), self.three(s)), 1)


def squeezenet1_1() -> nn.Module:
    def pool():
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(), _Fire(64, 16, 64), _Fire(128, 16, 64), pool(),
        _Fire(128, 32, 128), _Fire(256, 32, 128), pool(), _Fire(256, 48, 192), _Fire(384, 48, 192),
        _Fire(384, 64, 256), _Fire(512, 64, 256), nn.Dropout(0.5), nn.Conv2d(512, CLASSES, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _Shuffle(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        half = c_out // 2
        self.stride = stride
        self.left = nn.Sequential(_conv_bn(c_in, c_in, 3, stride, groups=c_in, act=None),
                                  _conv_bn(c_in, half, 1)) if stride > 1 else None
        right_in = c_in if stride > 1 else half
        self.right = nn.Sequential(_conv_bn(right_in, half, 1), _conv_bn(half, half, 3, stride, groups=half, act=None),
                                   _conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            kept, x = x.chunk(2, dim=1)
            out = torch.cat((kept, self.right(x)), 1)
        else:
            out = torch.cat((self.left(x), self.right(x)), 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # the channel shuffle


def shufflenet_v2() -> nn.Module:
    layers, c = [_conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)], 24
    for repeats, width in ((4, 116), (8, 232), (4, 464)):
        for i in range(repeats):
            layers.append(_Shuffle(c, width, 2 if i == 0 else 1))
            c = width
    return nn.Sequential(*layers, _conv_bn(c, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1024, CLASSES))


ZOO = {  # name -> (factory, parameters at 1,000 classes as the reference implementations count them)
    "resnet18": (resnet18, 11_689_512),
    "mobilenet_v2": (mobilenet_v2, 3_504_872),
    "squeezenet1_1": (squeezenet1_1, 1_235_496),
    "shufflenet_v2": (shufflenet_v2, 2_278_604),
    "efficientnet_b0": (efficientnet_b0, 5_288_548),
}
