"""PyTorch modules of the NAS-Bench-201 network (kept apart so parsing and costs need no torch import)."""
from __future__ import annotations

import torch
from torch import nn

from .cell import EDGES, KERNEL, NetConfig


def relu_conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout))


class Cell(nn.Module):
    """One searched cell: node i is the sum of the operations on its incoming edges; `none` edges are absent."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        self.edges: list[tuple[int, int, str]] = []
        self.layers = nn.ModuleDict()
        for (to, frm), op in zip(EDGES, ops):
            if op == "none":
                continue
            key = f"e{to}{frm}"
            if op in KERNEL:
                self.layers[key] = relu_conv_bn(channels, channels, KERNEL[op])
            elif op == "avg_pool_3x3":
                self.layers[key] = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
            else:
                self.layers[key] = nn.Identity()
            self.edges.append((to, frm, key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        for node in (1, 2, 3):
            acc = None
            for to, frm, key in self.edges:
                if to != node:
                    continue
                src = nodes[frm]
                layer = self.layers[key]
                if src is None:  # a zero node: only a convolution (its batch-norm shift) gives something nonzero
                    if not isinstance(layer, nn.Sequential):
                        continue
                    src = torch.zeros_like(x)
                y = layer(src)
                acc = y if acc is None else acc + y
            nodes.append(acc)
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class ResidualReduction(nn.Module):
    """The stride-2 residual block between stages (NB201's ResNetBasicblock)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_a = relu_conv_bn(cin, cout, 3, stride=2)
        self.conv_b = relu_conv_bn(cout, cout, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Network(nn.Module):
    def __init__(self, ops: tuple[str, ...], cfg: NetConfig):
        super().__init__()
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(3):
            ch = c * 2**stage
            if stage:
                layers.append(ResidualReduction(ch // 2, ch))
            layers.extend(Cell(ops, ch) for _ in range(cfg.cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
