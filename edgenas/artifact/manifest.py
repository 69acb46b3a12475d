"""The artifact's manifest.json: what the directory `edgenas compile` wrote holds and what it runs on.

`write` is the one writer (the SHA-256 of every file, written whole or not at all); `read` is the one checked
reader, used by `load`, `gate` and `predict`: it checks every file the manifest lists against its SHA-256, and
every problem is one line naming the file and the fix. The
file names of an artifact are the runtimes' (`edgenas.runtimes`): model.so for TVM, model.onnx, model.tflite.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgenasError
from ..runtimes import RUNTIMES

MANIFEST = "manifest.json"
LIBRARY, ONNX, TFLITE = (RUNTIMES[r].file for r in ("tvm", "onnxruntime", "litert"))
HEADER = "model.h"
RECOMPILE = "compile the artifact again with `edgenas compile`"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Manifest:
    directory: Path
    data: dict[str, Any]  # manifest.json as written
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def arch(self) -> str:
        return self.data["arch"]

    @property
    def space(self) -> str:
        return self.data.get("space", "unknown")

    @property
    def target(self) -> dict[str, Any]:
        return self.data["target"]

    def checked_file(self, name: str) -> Path:
        """The artifact's file `name`, after checking that it is there and is the file the manifest names."""
        path = self.directory / name
        if name not in self.data["files"]:
            raise EdgenasError(f"{self.directory / MANIFEST} lists no {name}; {RECOMPILE}")
        if not path.is_file():
            raise EdgenasError(f"{path} is missing; {RECOMPILE}")
        if sha256(path) != self.data["files"][name]:
            raise EdgenasError(f"{path} does not match the SHA-256 in {MANIFEST} (the file was changed or "
                               f"truncated); {RECOMPILE}")
        return path

    def library(self) -> Path:
        """model.so (checked with every other file when the manifest was read)."""
        return self.directory / LIBRARY


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _tensor(entry: dict[str, Any]) -> TensorSpec:
    return TensorSpec(str(entry["name"]), tuple(int(d) for d in entry["shape"]), np.dtype(entry["dtype"]).name)


def write(out_dir: Path, manifest: dict[str, Any], files: list[str]) -> dict[str, Any]:
    """Write `manifest` with the SHA-256 of each of `files` (names in `out_dir`) as out_dir/manifest.json,
    replacing any old one only once the new one is complete; return what was written."""
    manifest = {**manifest, "files": {name: sha256(out_dir / name) for name in files}}
    partial = out_dir / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, out_dir / MANIFEST)
    return manifest


def read(directory: str | Path) -> Manifest:
    """The checked manifest of the artifact in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgenasError(f"artifact directory {directory} does not exist; pass the directory that "
                           f"`edgenas compile -o DIR` wrote")
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgenasError(f"{path} is missing; pass a directory that `edgenas compile -o DIR` wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgenasError(f"{path} is not readable JSON ({e}); {RECOMPILE}") from None
    missing = [k for k in ("arch", "target", "inputs", "outputs", "files") if k not in data] \
        if isinstance(data, dict) else ["all"]
    if missing:
        raise EdgenasError(f"{path} lacks {', '.join(missing)}; {RECOMPILE}")
    try:
        inputs, outputs = (tuple(_tensor(t) for t in data[kind]) for kind in ("inputs", "outputs"))
        if not all(isinstance(data["target"][k], str) for k in ("name", "machine", "device")) \
                or not isinstance(data["target"].get("tvm"), dict) or not isinstance(data["files"], dict):
            raise TypeError("target name, machine and device must be strings, target tvm a map, files a map of "
                            "SHA-256s")
        if not all(d > 0 for t in (*inputs, *outputs) for d in t.shape):
            raise ValueError(f"shapes must be positive, got {[list(t.shape) for t in (*inputs, *outputs)]}")
    except (KeyError, TypeError, ValueError) as e:
        raise EdgenasError(f"{path} has a malformed target or input/output entry ({type(e).__name__}: {e}); "
                           f"{RECOMPILE}") from None
    if len(inputs) != 1 or not outputs:
        raise EdgenasError(f"{path} names {len(inputs)} inputs and {len(outputs)} outputs; edgenas runs networks "
                           f"with one input and at least one output")
    manifest = Manifest(directory, data, inputs, outputs)
    for name in dict.fromkeys([LIBRARY, *data["files"]]):  # every file it lists is the one written, model.so first
        manifest.checked_file(name)
    return manifest
