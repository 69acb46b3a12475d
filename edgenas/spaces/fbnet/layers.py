"""The FBNet space's fixed skeleton and its nine operations (HW-NAS-Bench's CIFAR-100 setting; the definition is
`../shared/benchmarks/fbnet/README.md`): what each of the 22 searchable layers takes and gives, and what each
operation computes. Shared by the costs (no torch) and the PyTorch network."""
from __future__ import annotations

from dataclasses import dataclass

# In the index order of the source data: k3_e1=0, k3_e1_g2=1, ..., skip=8.
OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS, HEAD_CHANNELS = 16, 1504
LAYERS = sum(STAGE_LAYERS)  # 22
FORMAT = "22 operations joined by '-', layer 1 first, e.g. k5_e6-skip-k3_e1_g2-... (operations: " + ", ".join(OPS) + ")"


@dataclass(frozen=True)
class Op:
    """An operation: kernel size, expansion and groups of an inverted-residual block, or a skip."""

    name: str
    kernel: int = 0
    expand: int = 0
    groups: int = 1

    @property
    def is_skip(self) -> bool:
        return self.name == "skip"


def op(name: str) -> Op:
    if name == "skip":
        return Op(name)
    kernel, expand, *grouped = name.split("_")
    return Op(name, int(kernel[1:]), int(expand[1:]), 2 if grouped else 1)


@dataclass(frozen=True)
class Layer:
    """One searchable layer's place in the skeleton: input and output channels, its stride."""

    cin: int
    cout: int
    stride: int

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output (and a skip is the identity)."""
        return self.cin == self.cout and self.stride == 1


def layers() -> tuple[Layer, ...]:
    """The 22 searchable layers in order: a stage's first layer takes its stride and the previous channels."""
    out, cin = [], STEM_CHANNELS
    for n, cout, stride in zip(STAGE_LAYERS, STAGE_CHANNELS, STAGE_STRIDES):
        for i in range(n):
            out.append(Layer(cin, cout, stride if i == 0 else 1))
            cin = cout
    return tuple(out)


@dataclass(frozen=True)
class NetConfig:
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 100
    batch: int = 1
