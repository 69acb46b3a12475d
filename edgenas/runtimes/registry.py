"""The registry of runtimes: what a runtime is (`Runtime`, carrying its metadata), the `Session` it opens on a
model file, and `register_runtime`, the decorator each runtime module registers itself with."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EdgenasError


@dataclass(frozen=True)
class Session:
    run: Callable[[int], float]  # n -> mean seconds per inference over n back-to-back runs
    outputs: tuple[np.ndarray, ...]  # the model's outputs for the measured input, in the model's order
    version: str


@dataclass(frozen=True)
class Runtime:
    name: str
    file: str  # the artifact file it runs (model.so, model.onnx, model.tflite)
    open: Callable[[Path, np.ndarray, int], Session]  # (model file, input, threads) -> a session here
    deployable: bool  # a device may deploy it: its latencies are the profile's support set, its budget checked on it
    remote: bool  # TVM's RPC servers can time it on a fleet's devices


RUNTIMES: dict[str, Runtime] = {}


def register_runtime(name: str, file: str, deployable: bool = False, remote: bool = False):
    """Decorator of a runtime's session function: make it available as `name`."""
    def wrap(open_session: Callable[[Path, np.ndarray, int], Session]):
        RUNTIMES[name] = Runtime(name, file, open_session, deployable, remote)
        return open_session
    return wrap


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        close = difflib.get_close_matches(name, list(RUNTIMES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise EdgenasError(f"no runtime '{name}'; {hint}known: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


def deployable() -> tuple[str, ...]:
    """The runtimes a device profile may name as what it deploys."""
    return tuple(name for name, r in RUNTIMES.items() if r.deployable)
