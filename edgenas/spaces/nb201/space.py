"""The NAS-Bench-201 cell space: 6 edges x 5 operations = 15,625 cells, and the network built from them.

An arch string lists, for nodes 1..3 of the cell, the operation on the edge from each earlier node:
`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`. The network (Dong & Yang, ICLR 2020) is a 3x3 stem, three
stages of N cells at C, 2C, 4C channels joined by residual reduction blocks, then BN-ReLU, global
average pooling and a linear classifier.

`none` edges are dropped from the built network. A node with no path from the cell input is zero, or a
constant where a convolution's batch norm turns a zero input into its shift; constant paths are computed
exactly by the network and folded away by the exporter, and the costs count only what still runs.
"""
from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import EdgenasError
from ..base import Costs, SearchSpace, peak_live
from ..registry import register_space
from .cell import EDGES, FORMAT, KERNEL, OPS, NetConfig, node_states, used_nodes


@register_space
class NB201(SearchSpace):
    name = "nb201"
    size = len(OPS) ** len(EDGES)
    checkpoint = Path(__file__).parent / "checkpoint.pt"  # meta-trained on the 13 devices of the shared table
    reference_split = {  # HELP's (NeurIPS 2021), as ../shared/benchmarks/nb201/README.md gives it
        "meta_train": ("1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
                       "essential_ph_1", "samsung_s7"),
        "validation": ("titanx_1", "titanx_32", "titanx_256", "gold_6240")}
    source_task, judged_task = "cifar10", "cifar100"

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, input_size: int = 32, in_channels: int = 3,
                 num_classes: int = 10, batch: int = 1):
        for key, value in dict(channels=channels, cells_per_stage=cells_per_stage, input_size=input_size,
                               in_channels=in_channels, num_classes=num_classes, batch=batch).items():
            if not isinstance(value, int) or value < 1:
                raise EdgenasError(f"nb201: {key} must be a positive whole number, got {value!r}")
        if input_size % 4:
            raise EdgenasError(f"nb201: input_size {input_size} must be divisible by 4 (two stride-2 reductions)")
        self.config = NetConfig(channels, cells_per_stage, input_size, in_channels, num_classes, batch)

    # --- strings, encodings, enumeration ---------------------------------------------------------------
    def parse(self, arch: str) -> tuple[str, ...]:
        """The six edge operations of `arch`, in EDGES order."""
        if not isinstance(arch, str) or not arch.strip():
            raise EdgenasError(f"arch {arch!r} is empty; give a cell as {FORMAT}")
        text = "".join(arch.split())
        nodes = text.split("+")
        if len(nodes) != 3:
            raise EdgenasError(f"arch {arch!r}: expected 3 nodes joined by '+', got {len(nodes)}; format {FORMAT}")
        found: dict[tuple[int, int], str] = {}
        for node, part in enumerate(nodes, start=1):
            if len(part) < 2 or part[0] != "|" or part[-1] != "|":
                raise EdgenasError(f"arch {arch!r}: node {node} '{part}' must be enclosed in '|'; format {FORMAT}")
            items = part[1:-1].split("|")
            if len(items) != node:
                raise EdgenasError(f"arch {arch!r}: node {node} takes {node} edge(s) (from nodes 0..{node - 1}), "
                                   f"got {len(items)}; format {FORMAT}")
            for item in items:
                op, sep, src = item.partition("~")
                if not sep or not src.isdigit():
                    raise EdgenasError(f"arch {arch!r}: edge '{item}' must read OP~INDEX, e.g. nor_conv_3x3~0")
                if int(src) >= node:
                    raise EdgenasError(f"arch {arch!r}: node {node} can only take input from nodes 0..{node - 1}, "
                                       f"not ~{src}")
                if (node, int(src)) in found:
                    raise EdgenasError(f"arch {arch!r}: node {node} has two edges from node {src}; keep one")
                if op not in OPS:
                    close = difflib.get_close_matches(op, OPS, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(OPS)}"
                    raise EdgenasError(f"arch {arch!r}: unknown operation '{op}'; {hint}")
                found[(node, int(src))] = op
        return tuple(found[e] for e in EDGES)

    @staticmethod
    def to_str(ops: tuple[str, ...]) -> str:
        nodes = ["|" + "|".join(f"{op}~{frm}" for (to, frm), op in zip(EDGES, ops) if to == node) + "|"
                 for node in (1, 2, 3)]
        return "+".join(nodes)

    def canonical(self, arch: str) -> str:
        return self.to_str(self.parse(arch))

    def encode(self, arch: str) -> np.ndarray:
        onehot = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
        for e, op in enumerate(self.parse(arch)):
            onehot[e, OPS.index(op)] = 1.0
        return onehot.reshape(-1)

    @property
    def decisions(self) -> tuple[int, ...]:
        return (len(OPS),) * len(EDGES)

    def from_choices(self, choices: tuple[int, ...]) -> str:
        return self.to_str(tuple(OPS[c] for c in choices))

    def index(self, arch: str) -> int:
        """Position of `arch` in `enumerate()`: the edges' operation indices read as a base-5 number."""
        return sum(OPS.index(op) * len(OPS) ** e for e, op in enumerate(self.parse(arch)))

    def from_index(self, index: int) -> str:
        if not 0 <= index < self.size:
            raise EdgenasError(f"nb201 index {index} is out of range; use 0..{self.size - 1}")
        return self.to_str(tuple(OPS[(index // len(OPS) ** e) % len(OPS)] for e in range(len(EDGES))))

    def enumerate(self) -> Iterator[str]:
        for combo in itertools.product(OPS, repeat=len(EDGES)):
            yield self.to_str(tuple(reversed(combo)))

    def is_degenerate(self, arch: str) -> bool:
        """True when the cell output does not depend on its input, so the whole network is a constant."""
        return node_states(self.parse(arch))[3] != "live"

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.batch, c.in_channels, c.input_size, c.input_size)

    def tuning_archs(self) -> list[str]:
        """Cells that together contain every kernel a cell can compile to. Per stage, a cell only has 3x3
        and 1x1 convolutions, 3x3 average pooling, ReLU and additions; a convolution's records serve it with
        any fused epilogue (the database matches by anchor block), so what must be covered are the
        convolutions and pools and the elementwise kernels left between them: node sums of 2 or 3 terms
        without a convolution, sums with a folded constant, and the reduction blocks, stem and head that
        every network shares."""
        conv3, conv1, pool, skip, none = "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none"
        cells = [
            (conv3, conv3, conv3, conv3, conv3, conv3),  # 3x3 convolutions with 0, 1 and 2 fused additions
            (conv1, conv1, conv1, conv1, conv1, conv1),  # the same for 1x1
            (pool, pool, pool, pool, pool, pool),  # pools; sums of 2 and 3 pools
            (skip, skip, pool, skip, pool, skip),  # sums of skips and pools without a convolution
            (conv3, conv3, pool, skip, conv1, skip),  # mixed, as in NB201's best cells
            (none, conv1, conv3, skip, conv3, none),  # a node with a constant (batch-norm shift) folded in
            (skip, skip, skip, conv3, conv1, conv1),  # a node doubled (x + x) that only convolutions read
            (conv1, skip, skip, skip, conv3, conv1),  # a sum of two shared tensors that only a convolution reads: add + ReLU
            (pool, skip, skip, conv1, conv3, pool),  # a sum of skips that a pool reads raw: a lone add
        ]
        return [self.to_str(ops) for ops in cells]

    # --- network --------------------------------------------------------------------------------------
    def build(self, arch: str, seed: int = 0):
        import torch

        from .network import NB201Network

        ops = self.parse(arch)
        torch.manual_seed(seed)
        return NB201Network(ops, self.config).eval()

    # --- static costs ---------------------------------------------------------------------------------
    def stages(self) -> list[tuple[int, int, int]]:
        """(channels, spatial size, cells) of the three stages."""
        c = self.config
        return [(c.channels * 2**s, c.input_size // 2**s, c.cells_per_stage) for s in range(3)]

    def costs(self, arch: str) -> Costs:
        ops = self.parse(arch)
        c = self.config
        return Costs(flops=2 * c.batch * self._macs(ops), params=self._params(ops),
                     peak_activation_bytes=4 * c.batch * self._peak_elements(ops))

    def _params(self, ops: tuple[str, ...]) -> int:
        c = self.config
        conv_bn = lambda cin, cout, k: cin * cout * k * k + 2 * cout  # noqa: E731  (conv + BN affine)
        total = conv_bn(c.in_channels, c.channels, 3)
        for stage, (ch, _, cells) in enumerate(self.stages()):
            if stage:
                prev = ch // 2
                total += conv_bn(prev, ch, 3) + conv_bn(ch, ch, 3) + prev * ch
            total += cells * sum(conv_bn(ch, ch, KERNEL[op]) for op in ops if op in KERNEL)
        last = self.stages()[-1][0]
        return total + 2 * last + last * c.num_classes + c.num_classes

    def _macs(self, ops: tuple[str, ...]) -> int:
        """Multiply-accumulates per sample that run after constant folding (0 for a degenerate cell)."""
        states = node_states(ops)
        if states[3] != "live":
            return 0
        c = self.config
        macs = c.input_size**2 * c.channels * c.in_channels * 9
        used = used_nodes(ops)
        cell = sum(KERNEL[op] ** 2 for (to, frm), op in zip(EDGES, ops)
                   if op in KERNEL and states[frm] == "live" and to in used)
        for stage, (ch, size, cells) in enumerate(self.stages()):
            hw = size * size
            if stage:
                prev = ch // 2
                macs += hw * ch * prev * 9 + hw * ch * ch * 9 + hw * ch * prev
            macs += cells * hw * ch * ch * cell
        return macs + self.stages()[-1][0] * c.num_classes

    def _peak_elements(self, ops: tuple[str, ...]) -> int:
        """Peak live activation elements per sample in the reference schedule: operators run in network
        order, each convolution (with its ReLU), pooling and two-input addition writes a new tensor, a skip
        edge reads its source in place, and a tensor is freed right after its last reader."""
        c = self.config
        states = node_states(ops)
        out_elems = c.num_classes
        if states[3] != "live":
            return c.in_channels * c.input_size**2 + out_elems
        program: list[tuple[str, list[str], int]] = []  # (output, inputs, elements)
        sizes: dict[str, int] = {}

        def emit(out: str, ins: list[str], elems: int) -> str:
            program.append((out, ins, elems))
            sizes[out] = elems
            return out

        x = emit("stem", ["input"], c.channels * c.input_size**2)
        for stage, (ch, size, cells) in enumerate(self.stages()):
            elems = ch * size * size
            if stage:
                a = emit(f"s{stage}.a", [x], elems)
                b = emit(f"s{stage}.b", [a], elems)
                p = emit(f"s{stage}.pool", [x], (ch // 2) * size * size)
                d = emit(f"s{stage}.down", [p], elems)
                x = emit(f"s{stage}.res", [b, d], elems)
            for k in range(cells):
                x = self._cell_program(ops, states, x, f"s{stage}c{k}", elems, emit)
        last = self.stages()[-1]
        x = emit("lastact", [x], last[0] * last[1] ** 2)
        x = emit("gap", [x], last[0])
        emit("logits", [x], out_elems)

        return peak_live(program, c.in_channels * c.input_size**2)

    @staticmethod
    def _cell_program(ops, states, x: str, tag: str, elems: int, emit) -> str:
        nodes = [x]
        used = used_nodes(ops)
        for node in (1, 2, 3):
            acc = None
            if node not in used:
                nodes.append(None)
                continue
            folded_constant = False
            for (to, frm), op in zip(EDGES, ops):
                if to != node or op == "none":
                    continue
                if states[frm] != "live":
                    folded_constant |= states[frm] == "const" or op in KERNEL
                    continue
                term = nodes[frm] if op == "skip_connect" else emit(f"{tag}.{node}{frm}", [nodes[frm]], elems)
                acc = term if acc is None else emit(f"{tag}.{node}{frm}+", [acc, term], elems)
            if acc is not None and folded_constant:
                acc = emit(f"{tag}.{node}+const", [acc], elems)
            nodes.append(acc)
        return nodes[3]
