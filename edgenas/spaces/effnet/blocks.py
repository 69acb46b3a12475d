"""The EfficientNet-B0 / MnasNet skeleton at ImageNet scale (the definition is
`../shared/benchmarks/effnet/README.md`) and what one block's choices mean: expansion, kernel, layer count and
squeeze-excitation of each of the 7 blocks, and the MBConv layers they make. Shared by the costs (no torch) and
the PyTorch network."""
from __future__ import annotations

import re
from dataclasses import dataclass

EXPANDS, KERNELS = (1, 4, 6), (3, 5)
BLOCK_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
BLOCK_STRIDES = (1, 2, 2, 2, 1, 2, 1)
MAX_LAYERS = (3, 3, 3, 3, 3, 4, 3)  # block 5 takes 1-4 layers, the others 1-3
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BLOCKS = len(BLOCK_CHANNELS)
PATTERN = re.compile(r"e(\d+)k(\d+)l(\d+)(se)?")
FORMAT = ("7 blocks joined by '-', block 0 first, each e{1,4,6}k{3,5}l{1,2,3} (block 5: l1-l4) plus 'se' for "
          "squeeze-excitation, e.g. e1k3l1se-e6k3l2se-e6k5l2se-e6k3l3se-e6k5l3se-e6k5l4se-e6k3l1se")


@dataclass(frozen=True)
class Block:
    """One block's choices: expansion `e`, depthwise kernel `k`, `layers` MBConv layers, squeeze-excitation."""

    expand: int
    kernel: int
    layers: int
    se: bool

    def __str__(self) -> str:
        return f"e{self.expand}k{self.kernel}l{self.layers}" + ("se" if self.se else "")


@dataclass(frozen=True)
class Layer:
    """One MBConv layer in place: input and output channels, stride and its block's choices."""

    cin: int
    cout: int
    stride: int
    expand: int
    kernel: int
    se: bool

    @property
    def mid(self) -> int:
        """Channels of the depthwise convolution (the expansion's output)."""
        return self.expand * self.cin

    @property
    def squeeze(self) -> int:
        """Channels inside the squeeze-excitation: a quarter of the layer's input channels, at least 1."""
        return max(1, self.cin // 4)

    @property
    def residual(self) -> bool:
        """Whether the layer adds its input to its output."""
        return self.stride == 1 and self.cin == self.cout


def layers(blocks: tuple[Block, ...]) -> tuple[Layer, ...]:
    """The MBConv layers in order: a block's first layer takes its stride and the previous block's channels."""
    out, cin = [], STEM_CHANNELS
    for block, cout, stride in zip(blocks, BLOCK_CHANNELS, BLOCK_STRIDES):
        for i in range(block.layers):
            out.append(Layer(cin, cout, stride if i == 0 else 1, block.expand, block.kernel, block.se))
            cin = cout
    return tuple(out)


def strided(size: int, stride: int) -> int:
    """A side's length after a convolution of odd kernel k, padding k // 2 and `stride`."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class NetConfig:
    input_size: int = 224  # the image's height
    input_width: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    batch: int = 1
