"""Files of architectures, as `edgenas measure --archs` reads them, and of latencies measured elsewhere, as
`edgenas store import` reads them."""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import EdgenasError
from .base import SearchSpace


def read_archs(path: str | Path, sp: SearchSpace) -> list[str]:
    """The architectures of a file: one per line ('#' comments and blank lines skipped), or a CSV whose header
    has an 'arch' column; each checked against the space, an error naming the line."""
    numbered = _lines(path, "architectures")
    column = None
    if numbered and "," in numbered[0][1]:
        column, numbered = _columns(path, numbered, ("arch",), "or write one architecture per line")[0], numbered[1:]
    archs = [_arch(path, n, (line.split(",") if column is not None else [line]), column or 0, sp)
             for n, line in numbered]
    if not archs:
        raise EdgenasError(f"{path} holds no architectures; write one per line")
    return archs


def read_latencies(path: str | Path, sp: SearchSpace) -> dict[str, float]:
    """Latencies measured elsewhere: a CSV whose header has an 'arch' and a 'latency_ms' column, each line an
    architecture of the space and its latency in milliseconds (a positive number), each architecture once; an
    error names the line."""
    numbered = _lines(path, "latencies")
    if not numbered:
        raise EdgenasError(f"{path} holds no latencies; write a header 'arch,latency_ms' and a line per architecture")
    arch_col, ms_col = _columns(path, numbered, ("arch", "latency_ms"), "e.g. arch,latency_ms")
    found: dict[str, tuple[int, float]] = {}
    for n, line in numbered[1:]:
        fields = line.split(",")
        arch = _arch(path, n, fields, arch_col, sp)
        text = fields[ms_col].strip() if ms_col < len(fields) else ""
        try:
            ms = float(text)
        except ValueError:
            ms = float("nan")
        if not (math.isfinite(ms) and ms > 0):
            raise EdgenasError(f"{path}:{n}: latency '{text}' is not a positive number of milliseconds; fix the value")
        if arch in found:
            raise EdgenasError(f"{path}:{n}: {arch} is listed again (first on line {found[arch][0]}); keep one line "
                               f"per architecture")
        found[arch] = (n, ms)
    if not found:
        raise EdgenasError(f"{path} holds no latencies under its header; add a line per architecture")
    return {arch: ms for arch, (_, ms) in found.items()}


def _lines(path: str | Path, what: str) -> list[tuple[int, str]]:
    """The file's lines that are not blank or '#' comments, with their numbers."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EdgenasError(f"cannot read {path} ({getattr(e, 'strerror', None) or e}); give a text file of "
                           f"{what}") from None
    return [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]


def _columns(path: str | Path, numbered: list[tuple[int, str]], names: tuple[str, ...], fix: str) -> list[int]:
    """The positions of the columns `names` in the CSV header (the first line)."""
    header = [h.strip() for h in numbered[0][1].split(",")]
    if not set(names) <= set(header):
        need, add = (f"an '{names[0]}' column", "one") if len(names) == 1 else \
            (f"the columns {', '.join(names)}", "them")
        raise EdgenasError(f"{path}: a CSV needs {need} (header: {numbered[0][1]}); add {add}, {fix}")
    return [header.index(name) for name in names]


def _arch(path: str | Path, n: int, fields: list[str], column: int, sp: SearchSpace) -> str:
    try:
        return sp.canonical(fields[column].strip())
    except (EdgenasError, IndexError) as e:
        raise EdgenasError(f"{path}:{n}: {e if isinstance(e, EdgenasError) else 'no arch field'}") from None
