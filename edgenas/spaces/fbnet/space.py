"""The FBNet space (Wu et al., CVPR 2019; HW-NAS-Bench's CIFAR-100 setting): 22 searchable layers of a fixed
skeleton, each one of 9 operations (inverted-residual blocks of kernel 3 or 5 and expansion 1, 3 or 6, two of
them with grouped 1x1 convolutions, or a skip), 9^22 (about 10^21) architectures: far too many to list, so
the space is sampled and searched from proposals, never enumerated.

An arch string is the 22 operation names joined by '-', layer 1 first. Costs are exact for the deployed graph
(batch norms folded, ReLU fused into its convolution): MACs of every convolution and the classifier,
trainable parameters, and the peak of live activations when the layers run in order (a block's input stays
alive until its residual addition).
"""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from ...errors import EdgenasError
from ..base import Costs, Program, SearchSpace
from ..registry import register_space
from .layers import FORMAT, HEAD_CHANNELS, LAYERS, OPS, STEM_CHANNELS, Layer, NetConfig, layers, op


@register_space
class FBNet(SearchSpace):
    name = "fbnet"
    size = len(OPS) ** LAYERS
    checkpoint = Path(__file__).parent / "checkpoint.pt"  # meta-trained on the 13 devices of the shared table
    reference_split = {  # HELP's (NeurIPS 2021), as ../shared/benchmarks/fbnet/README.md gives it
        "meta_train": ("1080ti_1", "1080ti_32", "1080ti_64", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
                       "essential_ph_1", "samsung_s7"),
        "validation": ("titanx_1", "titanx_32", "titanx_64", "gold_6240")}

    def __init__(self, input_size: int = 32, in_channels: int = 3, num_classes: int = 100, batch: int = 1):
        for key, value in dict(input_size=input_size, in_channels=in_channels, num_classes=num_classes,
                               batch=batch).items():
            if not isinstance(value, int) or value < 1:
                raise EdgenasError(f"fbnet: {key} must be a positive whole number, got {value!r}")
        if input_size % 8:
            raise EdgenasError(f"fbnet: input_size {input_size} must be divisible by 8 (three stride-2 stages)")
        self.config = NetConfig(input_size, in_channels, num_classes, batch)

    # --- strings, encodings ---------------------------------------------------------------------------------
    def parse(self, arch: str) -> tuple[str, ...]:
        """The 22 operations of `arch`, layer 1 first."""
        if not isinstance(arch, str) or not arch.strip():
            raise EdgenasError(f"arch {arch!r} is empty; give {FORMAT}")
        names = tuple(name.strip() for name in arch.strip().split("-"))
        if len(names) != LAYERS:
            raise EdgenasError(f"arch {arch!r}: expected {LAYERS} operations joined by '-', got {len(names)}")
        for i, name in enumerate(names, start=1):
            if name not in OPS:
                close = difflib.get_close_matches(name, OPS, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(OPS)}"
                raise EdgenasError(f"arch {arch!r}: layer {i}: unknown operation '{name}'; {hint}")
        return names

    def canonical(self, arch: str) -> str:
        return "-".join(self.parse(arch))

    def encode(self, arch: str) -> np.ndarray:
        onehot = np.zeros((LAYERS, len(OPS)), dtype=np.float32)
        onehot[np.arange(LAYERS), [OPS.index(name) for name in self.parse(arch)]] = 1.0
        return onehot.reshape(-1)

    @property
    def decisions(self) -> tuple[int, ...]:
        return (len(OPS),) * LAYERS

    def from_choices(self, choices: tuple[int, ...]) -> str:
        return "-".join(OPS[c] for c in choices)

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.batch, c.in_channels, c.input_size, c.input_size)

    def tuning_archs(self) -> list[str]:
        """One operation in every layer, for each of the nine: a kernel depends on the operation and the layer's
        shapes only (the residual addition, fused into the projection, on the layer), so these cover every
        kernel of every architecture."""
        return ["-".join([name] * LAYERS) for name in OPS]

    # --- network --------------------------------------------------------------------------------------------
    def build(self, arch: str, seed: int = 0):
        import torch

        from .network import FBNetNetwork

        ops = self.parse(arch)
        torch.manual_seed(seed)
        return FBNetNetwork(ops, self.config).eval()

    # --- static costs ---------------------------------------------------------------------------------------
    def costs(self, arch: str) -> Costs:
        c = self.config
        return self.program(self.parse(arch)).costs(c.batch, c.in_channels * c.input_size ** 2)

    def program(self, ops: tuple[str, ...]) -> Program:
        """The deployed graph: stem, the 22 layers, head, pool and classifier."""
        c = self.config
        p = Program()
        size = c.input_size
        x = p.conv("stem", "input", c.in_channels, STEM_CHANNELS, 3, (size, size))
        for i, (layer, name) in enumerate(zip(layers(), ops)):
            out_size = size // layer.stride
            x = self._layer(p, f"l{i}", x, layer, name, size, out_size)
            size = out_size
        x = p.conv("head", x, layers()[-1].cout, HEAD_CHANNELS, 1, (size, size))
        p.linear("logits", p.step("pool", [x], HEAD_CHANNELS), HEAD_CHANNELS, c.num_classes)
        return p

    @staticmethod
    def _layer(p: Program, tag: str, x: str, layer: Layer, name: str, size: int, out_size: int) -> str:
        if name == "skip":
            return x if layer.residual else p.conv(f"{tag}.skip", x, layer.cin, layer.cout, 1, (out_size, out_size))
        o = op(name)
        mid = o.expand * layer.cin
        y = p.conv(f"{tag}.expand", x, layer.cin, mid, 1, (size, size), o.groups)
        if o.groups > 1:
            y = p.step(f"{tag}.shuffle", [y], mid * size * size)
        y = p.conv(f"{tag}.dw", y, mid, mid, o.kernel, (out_size, out_size), mid)
        y = p.conv(f"{tag}.project", y, mid, layer.cout, 1, (out_size, out_size), o.groups)
        if layer.residual:
            y = p.step(f"{tag}.add", [x, y], layer.cout * out_size * out_size)
        return y
