"""The checkpoint of the few-shot models of one search space (`Trained`): plain tensors and metadata that load
with `torch.load(weights_only=True)`, refused with a clear error when old, damaged or made for another space.
Each space registers the checkpoint that ships for it (`SearchSpace.checkpoint`); `shipped` loads it.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import EdgenasError
from ..spaces import SearchSpace
from .generator import Generator
from .latency import LatencyPredictor
from .predictor import AccuracyPrior, TaskPredictor

FORMAT = 5  # 5: the zero-shot unit is a ridge fit plus a Gaussian process on its residual (4: a costs block)


@dataclass
class Trained:
    model: LatencyPredictor
    devices: list[str]  # the meta-training devices
    space: str
    accuracy: AccuracyPrior  # source-task accuracy prior
    accuracy_task: str  # the source task
    task: TaskPredictor
    generator: Generator

    PARTS = {"model": LatencyPredictor, "accuracy": AccuracyPrior, "task": TaskPredictor, "generator": Generator}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = {name: {"state": getattr(self, name).state_dict(), "config": getattr(self, name).config}
                 for name in self.PARTS}
        partial = path.with_name(path.name + ".partial")  # a checkpoint is written whole or not at all
        torch.save({"format": FORMAT, "parts": parts, "devices": self.devices, "space": self.space,
                    "accuracy_task": self.accuracy_task}, partial)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path, space: str | None = None) -> "Trained":
        """The checkpoint at `path`; with `space`, refused unless it was meta-trained for that space."""
        try:
            ckpt = torch.load(Path(path), weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EdgenasError(f"cannot load checkpoint {path} ({reason}); run edgenas meta-train to make one") \
                from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise EdgenasError(f"checkpoint {path} has an old or unknown format; run edgenas meta-train to make one")
        if space is not None and ckpt["space"] != space:
            raise EdgenasError(f"checkpoint {path} was meta-trained for search space '{ckpt['space']}', not "
                               f"'{space}'; run edgenas meta-train on a benchmark of {space}")
        parts = {}
        for name, kind in cls.PARTS.items():
            part = kind(**ckpt["parts"][name]["config"])
            part.load_state_dict(ckpt["parts"][name]["state"])
            parts[name] = part.eval()
        return cls(devices=list(ckpt["devices"]), space=ckpt["space"], accuracy_task=ckpt["accuracy_task"], **parts)


def shipped(space: SearchSpace) -> Trained:
    """The checkpoint meta-trained for `space` that ships with edgenas."""
    if space.checkpoint is None or not Path(space.checkpoint).exists():
        raise EdgenasError(f"no meta-trained checkpoint ships for search space '{space.name}'; make one with "
                           f"edgenas meta-train")
    return Trained.load(space.checkpoint, space.name)
