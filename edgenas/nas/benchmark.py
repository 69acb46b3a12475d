"""Benchmark tables of measured architectures: `archs.csv`, `latency_ms.csv`, `accuracy.csv` in one folder.

`archs.csv` has `index, arch`; `latency_ms.csv` has `index` and one column per device (milliseconds);
`accuracy.csv` has `index` and one column per task (percent). Rows join on `index`; any device and task
columns are accepted. Arch strings are checked and canonicalised by the search space. The tables are read
where they lie (never copied into the repository).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgenasError
from ..spaces import DEFAULT_SPACE, SearchSpace, get_space

FILES = {"archs": "archs.csv", "latency": "latency_ms.csv", "accuracy": "accuracy.csv"}


@dataclass
class Benchmark:
    space: SearchSpace
    archs: list[str]  # canonical, in row order
    latency: dict[str, np.ndarray] = field(default_factory=dict)  # device -> ms per arch
    accuracy: dict[str, np.ndarray] = field(default_factory=dict)  # task -> % per arch
    source: str = ""

    @property
    def devices(self) -> list[str]:
        return list(self.latency)

    @property
    def tasks(self) -> list[str]:
        return list(self.accuracy)

    def encodings(self) -> np.ndarray:
        """The space's encoding of every arch, one row each."""
        return np.stack([self.space.encode(a) for a in self.archs])

    def with_columns(self, columns: dict[str, dict[str, float]]) -> "Benchmark":
        """This table with more latency columns (name -> {architecture: ms}), such as the ones edgenas measured
        itself (`Store.columns`): an architecture the table lacks becomes a row of its own, unknown (NaN) in
        every other column and task."""
        clash = [name for name in columns if name in self.latency]
        if clash:
            raise EdgenasError(f"column '{clash[0]}' is already a column of {self.source}/latency_ms.csv; rename "
                               f"the profile whose measurements add it")
        known = set(self.archs)
        new = list(dict.fromkeys(a for column in columns.values() for a in map(self.space.canonical, column)
                                 if a not in known))
        archs = self.archs + new
        row = {a: i for i, a in enumerate(archs)}
        pad = lambda v: np.concatenate([v, np.full(len(new), np.nan)])  # noqa: E731
        latency = {d: pad(v) for d, v in self.latency.items()}
        for name, column in columns.items():
            values = np.full(len(archs), np.nan)
            for arch, ms in column.items():
                values[row[self.space.canonical(arch)]] = ms
            latency[name] = values
        return Benchmark(self.space, archs, latency, {t: pad(v) for t, v in self.accuracy.items()}, self.source)


def load_benchmark(directory: str | Path, space: str = DEFAULT_SPACE) -> Benchmark:
    """Read a benchmark folder; every problem is one line naming the file, the row and the fix."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgenasError(f"benchmark folder {directory} does not exist; pass the folder holding archs.csv "
                           f"and latency_ms.csv with --data")
    sp = get_space(space)
    index_arch = _read(directory / FILES["archs"], required=True)
    if list(index_arch[0]) != ["arch"]:
        raise EdgenasError(f"{directory / FILES['archs']}: expected the columns index, arch; got index, "
                           f"{', '.join(index_arch[0])}")
    order = sorted(index_arch[1])
    archs = []
    for i in order:
        try:
            archs.append(sp.canonical(index_arch[1][i]["arch"]))
        except EdgenasError as e:
            raise EdgenasError(f"{directory / FILES['archs']}: index {i}: {e}") from None
    bench = Benchmark(sp, archs, source=str(directory))
    for kind, target in (("latency", bench.latency), ("accuracy", bench.accuracy)):
        table = _read(directory / FILES[kind], required=kind == "latency")
        if table is None:
            continue
        columns, rows = table
        missing = sorted(set(order) - set(rows))
        if missing:
            raise EdgenasError(f"{directory / FILES[kind]}: no row for index {missing[0]} of archs.csv "
                               f"({len(missing)} missing); every arch needs a row")
        for column in columns:
            values = np.empty(len(order))
            for pos, i in enumerate(order):
                text = rows[i][column]
                try:
                    values[pos] = float(text) if text not in ("", "nan", "NaN") else np.nan
                except ValueError:
                    raise EdgenasError(f"{directory / FILES[kind]}: index {i}, column {column}: '{text}' is not "
                                       f"a number; fix the value or leave it empty") from None
            target[column] = values
    return bench


def _read(path: Path, required: bool) -> tuple[list[str], dict[int, dict[str, str]]] | None:
    if not path.exists():
        if required:
            raise EdgenasError(f"{path} is missing; a benchmark folder needs {FILES['archs']} and "
                               f"{FILES['latency']}")
        return None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or reader.fieldnames[0] != "index":
            raise EdgenasError(f"{path}: the first column must be 'index'; add a header line starting with index")
        columns = reader.fieldnames[1:]
        rows: dict[int, dict[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                i = int(row["index"])
            except (TypeError, ValueError):
                raise EdgenasError(f"{path}: line {line}: index '{row['index']}' is not a whole number") from None
            if i in rows:
                raise EdgenasError(f"{path}: line {line}: index {i} appears twice; keep one row per index")
            rows[i] = row
    return columns, rows
