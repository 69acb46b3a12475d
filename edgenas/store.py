"""The measurement store: every latency edgenas measures, and those measured elsewhere and imported
(`import_latencies`), in one SQLite file.

WAL journal, one committed transaction per measurement (synchronous=FULL), so a crash mid-run loses
nothing already written. The schema is versioned with `PRAGMA user_version` and migrated forward on open;
a file from a newer edgenas is refused rather than misread. Default location: the user's cache dir
(EDGENAS_DB or `--db` override it).
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import __version__, host
from .device.profile import PROFILES, Profile
from .device.target import TARGETS
from .errors import EdgenasError
from .measure.timing import Measurement
from .runtimes import get_runtime
from .spaces import DEFAULT_SPACE, SearchSpace, configure, read_latencies

MIGRATIONS = [
    """
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        profile TEXT NOT NULL,
        runtime TEXT NOT NULL,
        space TEXT NOT NULL,
        arch TEXT NOT NULL,
        input_shape TEXT NOT NULL,
        threads INTEGER NOT NULL,
        p50_ms REAL NOT NULL, p90_ms REAL NOT NULL, min_ms REAL NOT NULL, mean_ms REAL NOT NULL,
        std_ms REAL NOT NULL, spread REAL NOT NULL, repeats INTEGER NOT NULL, number INTEGER NOT NULL,
        stable INTEGER NOT NULL,
        target TEXT NOT NULL,
        edgenas_version TEXT NOT NULL,
        tvm_version TEXT NOT NULL,
        runtime_version TEXT NOT NULL,
        machine TEXT NOT NULL,
        machine_facts TEXT NOT NULL
    );
    CREATE INDEX measurements_profile ON measurements (profile, runtime, space, arch);
    """,
    # v2: which device took the measurement: 'local' (this machine) or the HOST:PORT of an RPC server
    """
    ALTER TABLE measurements ADD COLUMN device TEXT NOT NULL DEFAULT 'local';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
IMPORTED = "imported"  # the device (and machine) of a latency measured elsewhere and imported from a file


def default_path() -> Path:
    if os.environ.get("EDGENAS_DB"):
        return Path(os.environ["EDGENAS_DB"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("edgenas")) / "measurements.sqlite"


@dataclass(frozen=True)
class Record:
    id: int
    created_at: str
    profile: str
    runtime: str
    space: str
    arch: str
    input_shape: tuple[int, ...]
    threads: int
    p50_ms: float
    p90_ms: float
    min_ms: float
    stable: bool
    machine: str
    device: str


class Store:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise EdgenasError(f"{self.path} is not a usable edgenas store ({e}); pass another file with --db") from None
        except OSError as e:
            raise EdgenasError(f"cannot create the store at {self.path} ({e.strerror}); pass a writable path "
                               f"with --db") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise EdgenasError(f"{self.path} has store schema v{version}, this edgenas knows v{SCHEMA_VERSION}; "
                               f"upgrade edgenas or use another --db")
        for number in range(version, SCHEMA_VERSION):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, profile: str, space: str, arch: str, input_shape: tuple[int, ...], target: dict[str, Any],
            m: Measurement) -> int:
        """Write one measurement in its own committed transaction; return its id."""
        import tvm

        digest, facts = host.fingerprint()
        s = m.stats
        return self._insert([dict(
            profile=profile, runtime=m.runtime, space=space, arch=arch, input_shape=json.dumps(list(input_shape)),
            threads=m.threads, p50_ms=s.p50_ms, p90_ms=s.p90_ms, min_ms=s.min_ms, mean_ms=s.mean_ms, std_ms=s.std_ms,
            spread=s.spread, repeats=s.repeats, number=s.number, stable=int(s.stable),
            target=json.dumps(target, sort_keys=True), tvm_version=tvm.__version__, runtime_version=m.runtime_version,
            machine=digest, machine_facts=json.dumps(facts, sort_keys=True), device=m.device)])[0]

    def add_imported(self, profile: str, runtime: str, space: str, input_shape: tuple[int, ...],
                     target: dict[str, Any], latencies: dict[str, float], source: str) -> list[int]:
        """Write latencies measured elsewhere (architecture -> ms, e.g. by LiteRT's benchmark tool on a phone) in
        one transaction, so a file is imported whole or not at all; return their ids. They are marked as such:
        device 'imported', no repeats, and the file they came from."""
        return self._insert([dict(
            profile=profile, runtime=runtime, space=space, arch=arch, input_shape=json.dumps(list(input_shape)),
            threads=0, p50_ms=ms, p90_ms=ms, min_ms=ms, mean_ms=ms, std_ms=0.0, spread=0.0, repeats=0, number=0,
            stable=1, target=json.dumps(target, sort_keys=True), tvm_version="", runtime_version=IMPORTED,
            machine=IMPORTED, machine_facts=json.dumps({"source": source}), device=IMPORTED)
            for arch, ms in latencies.items()])

    def _insert(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert `rows` (columns but the creation time and edgenas version) in one committed transaction."""
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        ids = []
        with self.db:  # BEGIN ... COMMIT, rolled back on error
            self.db.execute("BEGIN IMMEDIATE")
            for row in rows:
                row = {"created_at": created, "edgenas_version": __version__, **row}
                columns, marks = ", ".join(row), ", ".join("?" for _ in row)
                cur = self.db.execute(f"INSERT INTO measurements ({columns}) VALUES ({marks})", list(row.values()))
                ids.append(int(cur.lastrowid))
        return ids

    def records(self, profile: str | None = None, runtime: str | None = None,
                space: str | None = None) -> Iterator[Record]:
        where, args = [], []
        for column, value in (("profile", profile), ("runtime", runtime), ("space", space)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("SELECT id, created_at, profile, runtime, space, arch, input_shape, threads, p50_ms, p90_ms, min_ms, "
               "stable, machine, device FROM measurements")
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self.db.execute(sql + " ORDER BY id", args):
            values = list(row)
            values[6] = tuple(json.loads(values[6]))
            values[11] = bool(values[11])
            yield Record(*values)

    def latest(self, profile: str, space: str, input_shape: tuple[int, ...], runtime: str = "tvm") -> dict[str, float]:
        """The newest p50 (ms) of each architecture measured for `profile` on `runtime` with this input shape:
        what the store knows of the device, wherever it was measured (here, or on any device of its fleet)."""
        return {r.arch: r.p50_ms for r in self.records(profile=profile, runtime=runtime, space=space)
                if r.input_shape == tuple(input_shape)}


@dataclass(frozen=True)
class Imported:
    profile: str
    runtime: str
    ids: list[int]
    store: Path

    def summary(self) -> str:
        """What `edgenas store import` prints."""
        return (f"imported {len(self.ids)} {self.runtime} latencies of '{self.profile}' into {self.store}; they "
                f"condition edgenas compile --target {self.profile} --latency-ms B")


def import_latencies(path: str | Path, profile: str | Profile, space: str | SearchSpace = DEFAULT_SPACE,
                     runtime: str | None = None, db: str | Path | None = None) -> Imported:
    """`edgenas store import`: add the latencies of a CSV (`arch,latency_ms`, measured elsewhere) to the store as
    measurements of `profile` on `runtime` (default: the runtime it deploys), where they join its support set.
    Every line is checked before anything is written."""
    profile = PROFILES.get(profile) if isinstance(profile, str) else profile
    runtime = get_runtime(runtime or profile.runtime).name
    sp = configure(space, profile.batch)
    latencies = read_latencies(path, sp)
    with Store(db) as store:
        ids = store.add_imported(profile.name, runtime, sp.name, sp.input_shape, TARGETS.get(profile.target).tvm,
                                 latencies, str(path))
        return Imported(profile.name, runtime, ids, store.path)
