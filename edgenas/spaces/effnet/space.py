"""The EfficientNet space (EfficientNet-B0 / MnasNet, Accel-NASBench's setting): 7 blocks of MBConv layers, each
block choosing its expansion (1, 4, 6), depthwise kernel (3, 5), layer count (1-3; block 5: 1-4) and whether it
has squeeze-excitation: 36^6 x 48, about 10^11 architectures at 224x224 and 1,000 classes. Far too many to list:
the space is sampled and searched from proposals, never enumerated.

An arch string is the 7 blocks joined by '-', block 0 first, each `e{E}k{K}l{L}` plus `se`. Costs are exact for
the deployed graph (batch norms folded, SiLU fused into its convolution): MACs of every convolution (the
squeeze-excitation's included) and the classifier, trainable parameters (the table's `mparams`), and the peak of
live activations when the layers run in order (a layer's input stays alive until its residual addition, the
depthwise output until the squeeze-excitation has scaled it). A network is built with its batch norms'
statistics taken from a seeded random batch (`network.calibrate_batch_norms`), so its output carries signal.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ...errors import EdgenasError
from ..base import Costs, Program, SearchSpace
from ..registry import register_space
from .blocks import (
    BLOCK_CHANNELS,
    BLOCKS,
    EXPANDS,
    FORMAT,
    HEAD_CHANNELS,
    KERNELS,
    MAX_LAYERS,
    PATTERN,
    STEM_CHANNELS,
    Block,
    Layer,
    NetConfig,
    layers,
    strided,
)


@register_space
class EffNet(SearchSpace):
    name = "effnet"
    size = int(np.prod([len(EXPANDS) * len(KERNELS) * n * 2 for n in MAX_LAYERS]))
    checkpoint = Path(__file__).parent / "checkpoint.pt"  # meta-trained on the table's four columns
    # The table's README names no split: its GPUs' twins stay apart (a100 trains, rtx3090 validates), the FPGA and
    # the TPU, each alone of its kind, train.
    reference_split = {"meta_train": ("zcu102", "a100", "tpuv2"), "validation": ("rtx3090",)}
    # ImageNet top-1 is both what the shipped prior knows and what bench nas judges (with a capacity prior there)
    source_task, judged_task = "imagenet_top1", "imagenet_top1"

    def __init__(self, input_size: int = 224, in_channels: int = 3, num_classes: int = 1000, batch: int = 1,
                 input_width: int | None = None):
        input_width = input_size if input_width is None else input_width
        for key, value in dict(input_size=input_size, input_width=input_width, in_channels=in_channels,
                               num_classes=num_classes, batch=batch).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EdgenasError(f"effnet: {key} must be a positive whole number, got {value!r}")
        self.config = NetConfig(input_size, input_width, in_channels, num_classes, batch)

    # --- strings, encodings ---------------------------------------------------------------------------------
    def parse(self, arch: str) -> tuple[Block, ...]:
        """The 7 blocks of `arch`, block 0 first."""
        if not isinstance(arch, str) or not arch.strip():
            raise EdgenasError(f"arch {arch!r} is empty; give {FORMAT}")
        tokens = [token.strip().lower() for token in arch.strip().split("-")]
        if len(tokens) != BLOCKS:
            raise EdgenasError(f"arch {arch!r}: expected {BLOCKS} blocks joined by '-', got {len(tokens)}; give "
                               f"{FORMAT}")
        blocks = []
        for b, token in enumerate(tokens):
            m = PATTERN.fullmatch(token)
            if not m:
                raise EdgenasError(f"arch {arch!r}: block {b} '{token}' must read eEkKlL or eEkKlLse, e.g. e6k3l2se")
            e, k, n = (int(g) for g in m.group(1, 2, 3))
            for what, value, allowed in (("expansion e", e, EXPANDS), ("kernel k", k, KERNELS),
                                         ("layer count l", n, range(1, MAX_LAYERS[b] + 1))):
                if value not in allowed:
                    raise EdgenasError(f"arch {arch!r}: block {b} '{token}': {what} {value} is not one of "
                                       f"{', '.join(map(str, allowed))}")
            blocks.append(Block(e, k, n, m.group(4) is not None))
        return tuple(blocks)

    def canonical(self, arch: str) -> str:
        return "-".join(map(str, self.parse(arch)))

    def _choices(self, blocks: tuple[Block, ...]) -> tuple[int, ...]:
        return tuple(itertools.chain.from_iterable(
            (EXPANDS.index(b.expand), KERNELS.index(b.kernel), b.layers - 1, int(b.se)) for b in blocks))

    def encode(self, arch: str) -> np.ndarray:
        onehot = np.zeros(sum(self.decisions), dtype=np.float32)
        offsets = np.r_[0, np.cumsum(self.decisions)[:-1]]
        onehot[offsets + np.array(self._choices(self.parse(arch)))] = 1.0
        return onehot

    @property
    def decisions(self) -> tuple[int, ...]:
        """Per block, in order: expansion (3), kernel (2), layer count (3; block 5: 4), squeeze-excitation (2)."""
        return tuple(itertools.chain.from_iterable((len(EXPANDS), len(KERNELS), n, 2) for n in MAX_LAYERS))

    def from_choices(self, choices: tuple[int, ...]) -> str:
        return "-".join(str(Block(EXPANDS[choices[4 * b]], KERNELS[choices[4 * b + 1]], choices[4 * b + 2] + 1,
                                  bool(choices[4 * b + 3]))) for b in range(BLOCKS))

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.batch, c.in_channels, c.input_size, c.input_width)

    def tuning_archs(self) -> list[str]:
        """Every block alike, with its most layers, for each expansion x kernel x squeeze-excitation: a kernel
        depends on the layer's shapes and choices only (a block's first layer takes its stride and the previous
        channels and has no residual addition, its later layers repeat one shape with one), so these 12 cover
        every kernel of every architecture."""
        return ["-".join(str(Block(e, k, n, se)) for n in MAX_LAYERS)
                for e, k, se in itertools.product(EXPANDS, KERNELS, (False, True))]

    # --- network --------------------------------------------------------------------------------------------
    def build(self, arch: str, seed: int = 0):
        import torch

        from .network import EffNetNetwork, calibrate_batch_norms

        blocks = self.parse(arch)
        torch.manual_seed(seed)
        return calibrate_batch_norms(EffNetNetwork(blocks, self.config), self.input_shape, seed)

    # --- static costs ---------------------------------------------------------------------------------------
    def costs(self, arch: str) -> Costs:
        c = self.config
        return self.program(self.parse(arch)).costs(c.batch, c.in_channels * c.input_size * c.input_width)

    def program(self, blocks: tuple[Block, ...]) -> Program:
        """The deployed graph: stem, MBConv layers, head, pool and classifier."""
        c = self.config
        p = Program()
        hw = (strided(c.input_size, 2), strided(c.input_width, 2))
        x = p.conv("stem", "input", c.in_channels, STEM_CHANNELS, 3, hw)
        for i, layer in enumerate(layers(blocks)):
            x, hw = self._layer(p, f"l{i}", x, layer, hw)
        x = p.conv("head", x, BLOCK_CHANNELS[-1], HEAD_CHANNELS, 1, hw)
        p.linear("logits", p.step("pool", [x], HEAD_CHANNELS), HEAD_CHANNELS, c.num_classes)
        return p

    @staticmethod
    def _layer(p: Program, tag: str, x: str, layer: Layer, hw: tuple[int, int]) -> tuple[str, tuple[int, int]]:
        y = p.conv(f"{tag}.expand", x, layer.cin, layer.mid, 1, hw) if layer.expand != 1 else x
        hw = (strided(hw[0], layer.stride), strided(hw[1], layer.stride))
        y = p.conv(f"{tag}.dw", y, layer.mid, layer.mid, layer.kernel, hw, layer.mid)
        if layer.se:
            gate = p.step(f"{tag}.se_pool", [y], layer.mid)
            gate = p.conv(f"{tag}.se_reduce", gate, layer.mid, layer.squeeze, 1, (1, 1), bias=True)
            gate = p.conv(f"{tag}.se_expand", gate, layer.squeeze, layer.mid, 1, (1, 1), bias=True)
            y = p.step(f"{tag}.se_scale", [y, gate], layer.mid * hw[0] * hw[1])
        y = p.conv(f"{tag}.project", y, layer.mid, layer.cout, 1, hw)
        if layer.residual:
            y = p.step(f"{tag}.add", [x, y], layer.cout * hw[0] * hw[1])
        return y, hw
