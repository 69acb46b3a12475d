"""What every search space provides: parsing, encoding, enumeration, a PyTorch builder, static costs and its
metadata (checkpoint, covering architectures)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import EdgenasError


@dataclass(frozen=True)
class Costs:
    """Static costs of one network at one input shape.

    flops: floating-point operations of convolutions and linear layers (2 per multiply-accumulate) that run
    in the deployed graph. params: trainable parameters of the PyTorch network. peak_activation_bytes:
    the largest total size of intermediate tensors alive at once in the space's reference schedule.
    """

    flops: int
    params: int
    peak_activation_bytes: int

    @property
    def memory_mb(self) -> float:
        """Weights (float32) plus peak activations, in MB: what the memory budget is checked against."""
        return (4 * self.params + self.peak_activation_bytes) / 2**20

    def as_dict(self) -> dict:
        return {"flops": self.flops, "mflops": round(self.flops / 1e6, 3), "params": self.params,
                "peak_activation_bytes": self.peak_activation_bytes,
                "peak_activation_mb": round(self.peak_activation_bytes / 2**20, 4),
                "memory_mb": round(self.memory_mb, 4)}


def peak_live(program: list[tuple[str, list[str], int]], input_elements: int) -> int:
    """The most tensor elements alive at once when `program` runs in order: each step (output, inputs, its
    elements) writes a new tensor while its inputs are alive, and a tensor is freed right after its last reader.
    The network's input is the tensor "input"."""
    last_use = {t: i for i, (_, ins, _) in enumerate(program) for t in ins}
    live = {"input": input_elements}
    peak = input_elements
    for i, (out, ins, elements) in enumerate(program):
        live[out] = elements
        peak = max(peak, sum(live.values()))
        for t in set(ins):
            if last_use[t] == i:
                live.pop(t, None)
    return peak


class Program:
    """A deployed graph written down step by step, for `Costs`: each step (output, inputs, elements) in run order,
    and the multiply-accumulates and trainable parameters of its convolutions and linear layers (a convolution
    without bias has a folded batch norm: 2 parameters per output channel)."""

    def __init__(self):
        self.steps: list[tuple[str, list[str], int]] = []
        self.macs = 0
        self.params = 0

    def step(self, out: str, inputs: list[str], elements: int) -> str:
        self.steps.append((out, inputs, elements))
        return out

    def conv(self, out: str, src: str, cin: int, cout: int, kernel: int, hw: tuple[int, int], groups: int = 1,
             bias: bool = False) -> str:
        """A KxK convolution giving `cout` channels of `hw` pixels: with a bias, or else with a batch norm."""
        self.macs += hw[0] * hw[1] * cout * (cin // groups) * kernel * kernel
        self.params += cout * (cin // groups) * kernel * kernel + (cout if bias else 2 * cout)
        return self.step(out, [src], cout * hw[0] * hw[1])

    def linear(self, out: str, src: str, fin: int, fout: int) -> str:
        self.macs += fin * fout
        self.params += fin * fout + fout
        return self.step(out, [src], fout)

    def costs(self, batch: int, input_elements: int) -> Costs:
        return Costs(flops=2 * batch * self.macs, params=self.params,
                     peak_activation_bytes=4 * batch * peak_live(self.steps, input_elements))


class SearchSpace(ABC):
    """A search space and what is registered with it: its name and size, the input its networks take
    (`input_shape`, from the configuration), the checkpoint meta-trained for it (`checkpoint`) and the
    architectures that cover its kernels for tuning (`tuning_archs`)."""

    name: str
    size: int
    config: object  # the dataclass of keyword arguments the space was made with (get_space(name, **fields))
    checkpoint: Path | None = None  # the few-shot models meta-trained for this space, shipped with edgenas
    # The reference split of the space's benchmark table (its README): meta-training and validation devices.
    reference_split: dict[str, tuple[str, ...]] = {}
    # The table's accuracy columns: what the shipped checkpoint's accuracy prior learns from (`source_task`; None:
    # the capacity proxy) and what `bench nas` judges picks by (`judged_task`; None: the table has no accuracy).
    source_task: str | None = None
    judged_task: str | None = None

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """The canonical string of `arch`; raise EdgenasError on an invalid one."""

    @abstractmethod
    def encode(self, arch: str) -> np.ndarray:
        """A fixed-length float32 vector for learning: the one-hots of the decisions, concatenated in order."""

    @property
    @abstractmethod
    def decisions(self) -> tuple[int, ...]:
        """How many choices each decision of an architecture has, in the order a generator makes them."""

    @abstractmethod
    def from_choices(self, choices: tuple[int, ...]) -> str:
        """The canonical architecture made of one choice per decision."""

    def decode(self, encoding: np.ndarray) -> str:
        """The canonical architecture of a one-hot encoding (the inverse of `encode`)."""
        offsets = np.r_[0, np.cumsum(self.decisions)]
        return self.from_choices(tuple(int(np.argmax(encoding[a:b])) for a, b in zip(offsets, offsets[1:])))

    @property
    def enumerable(self) -> bool:
        """Whether `enumerate` lists the space (it is small enough)."""
        return type(self).enumerate is not SearchSpace.enumerate

    def enumerate(self) -> Iterator[str]:
        """Every architecture of the space, as canonical strings, where the space is small enough to list."""
        raise EdgenasError(f"search space '{self.name}' has {self.size:.3g} architectures, too many to list; "
                           f"sample them or search from the generator's proposals")

    @abstractmethod
    def build(self, arch: str, seed: int = 0):
        """The full network as a torch.nn.Module in eval mode, initialised from `seed`."""

    @abstractmethod
    def costs(self, arch: str) -> Costs:
        """Static costs, computed exactly from the architecture (no network is built)."""

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The network's input shape, batch first."""

    def describe(self, arch: str) -> dict:
        """Canonical form, encoding and static costs of `arch` (`edgenas arch show`), with its index where the
        space numbers its architectures."""
        canonical = self.canonical(arch)
        info = {"space": self.name, "arch": canonical, "input_shape": list(self.input_shape),
                "encoding": [int(v) for v in self.encode(canonical)], "costs": self.costs(canonical).as_dict()}
        if hasattr(self, "index"):
            info["index"] = self.index(canonical)
        info["degenerate"] = self.is_degenerate(canonical)
        return info

    def is_degenerate(self, arch: str) -> bool:
        """Whether the network's output does not depend on its input (no path from input to output)."""
        return False

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """`n` distinct architectures drawn uniformly (each decision at random), degenerate ones left out; the
        same `seed` draws the same list, and a larger `n` extends a smaller one's."""
        rng = np.random.default_rng(seed)
        picked: dict[str, None] = {}
        for _ in range(100 * n + 1000):
            if len(picked) == n:
                return list(picked)
            arch = self.from_choices(tuple(int(rng.integers(k)) for k in self.decisions))
            if not self.is_degenerate(arch):
                picked[arch] = None
        raise EdgenasError(f"search space '{self.name}' gave only {len(picked)} distinct architectures for "
                           f"--sample {n}; sample fewer")

    def tuning_archs(self) -> list[str]:
        """Architectures whose operator workloads together cover every architecture of the space: what
        `edgenas tune` tunes, so that any architecture then compiles from the tuning database."""
        raise EdgenasError(f"search space '{self.name}' names no covering architectures for tuning; "
                           f"pass architectures to tune explicitly")
