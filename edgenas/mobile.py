"""The optional [mobile] extra: LiteRT (TFLite) beside TVM, for the runtime phones use.

`pip install 'edgenas[mobile]'` brings the LiteRT interpreter (`ai-edge-litert`, else `tflite-runtime` if that is
what is installed) and the converter's dependencies; `python -m edgenas.mobile` then installs the converter itself,
`litert-torch` with `litert-converter`, without their declared dependencies: both pin xdsl==0.28.0, which wants
typing-extensions<4.13 while TVM's FFI wants >=4.13, so pip cannot install them beside TVM, and converting a
network never imports xdsl (it serves their LLM tooling). `setup.sh` does both steps.

This module says what is installed (`converter`, `interpreter`) and, where something is missing, what installing
it would add (`MISSING`); compiler/export.py converts with it and runtimes/litert.py runs it.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from typing import Iterator

from .errors import EdgenasError

NO_DEPS = ("litert-torch==0.10.0", "litert-converter==0.5.0")
INSTALL = "pip install 'edgenas[mobile]' && python -m edgenas.mobile"
MISSING = (f"LiteRT is not installed: {INSTALL} adds model.tflite (checked against PyTorch with the LiteRT "
           f"interpreter) and its LiteRT latency beside TVM's")


def converter():
    """litert_torch (PyTorch -> .tflite), or an EdgenasError saying how to install it. Its import prints
    warnings of torchao's and TensorFlow's from C++; they are kept off the user's terminal."""
    try:
        with captured_output():
            import litert_torch
    except ImportError as e:
        raise EdgenasError(f"{MISSING} ({e})") from None
    return litert_torch


def interpreter():
    """The LiteRT interpreter class: ai-edge-litert's, else tflite-runtime's; an EdgenasError if neither."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise EdgenasError(MISSING) from None
    return Interpreter


def available() -> bool:
    """Whether the converter and an interpreter import (the first import takes about 2 s; callers that ask
    convert right after, so it is not wasted)."""
    try:
        converter()
        interpreter()
        return True
    except EdgenasError:
        return False


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Send what this process writes to its stdout and stderr file descriptors (C++ included) to a temporary
    file while the block runs; the list it yields holds that text once the block has ended."""
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def main() -> None:
    """Install the converter (see the module docstring for why --no-deps)."""
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *NO_DEPS]))


if __name__ == "__main__":
    main()
