"""The measurement store: every latency edgenas measures, and those measured elsewhere and imported
(`import_latencies`), in one SQLite file; and its upkeep (`edgenas store list|show|remove|export|vacuum`).

WAL journal, one committed transaction per measurement (synchronous=FULL), so a crash mid-run loses
nothing already written. The schema is versioned with `PRAGMA user_version` and migrated forward on open;
a file from a newer edgenas is refused rather than misread. Default location: the user's cache dir
(EDGENAS_DB or `--db` override it).
"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

from . import __version__, host
from .device.profile import Profile, as_profile
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
    # v3: how busy other processes kept the machine while it timed (cores), and whether that was too much: a
    # measurement taken under load is kept, flagged, and not used as support
    """
    ALTER TABLE measurements ADD COLUMN other_cores REAL;
    ALTER TABLE measurements ADD COLUMN under_load INTEGER NOT NULL DEFAULT 0;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
IMPORTED = "imported"  # the device (and machine) of a latency measured elsewhere and imported from a file


def default_path() -> Path:
    if os.environ.get("EDGENAS_DB"):
        return Path(os.environ["EDGENAS_DB"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("edgenas")) / "measurements.sqlite"


def _writable(path: Path) -> bool:
    """Whether edgenas may write the store at `path` and its journal beside it (the nearest existing folder, for
    a store still to be created)."""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


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
    under_load: bool


class Store:
    """The store at `path`, created if need be. A file edgenas may not write (or a folder it may not create files
    in: SQLite's journal lives beside the file) is opened read-only: everything can be read, and recording says
    that it cannot. An SQLite file with other tables than edgenas's is refused, untouched."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        try:
            self.writable = _writable(self.path)
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            elif self.path.is_file():
                self.db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=30,
                                          isolation_level=None)
            else:
                raise EdgenasError(f"cannot create the store at {self.path} (its folder is not writable); pass a "
                                   f"writable path with --db")
            self._refuse_foreign()
            if self.writable:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self._migrate()
            elif self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                raise EdgenasError(f"{self.path} is read-only and has an older store schema, which edgenas cannot "
                                   f"migrate there; make it writable once, or pass another file with --db")
        except sqlite3.DatabaseError as e:
            raise EdgenasError(f"{self.path} is not a usable edgenas store ({e}); pass another file with --db") \
                from None
        except OSError as e:
            raise EdgenasError(f"cannot create the store at {self.path} ({e.strerror}); pass a writable path "
                               f"with --db") from None

    def _refuse_foreign(self) -> None:
        """An SQLite file that holds tables and is not an edgenas store is someone else's: never add to it."""
        tables = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables - {"measurements"} or (tables and self.db.execute("PRAGMA user_version").fetchone()[0] == 0):
            self.db.close()
            raise EdgenasError(f"{self.path} is an SQLite file of something else (tables: "
                               f"{', '.join(sorted(tables))}), not an edgenas store; pass another file with --db")

    def require_writable(self) -> None:
        if not self.writable:
            raise EdgenasError(f"the store {self.path} is read-only, so measurements cannot be recorded; pass a "
                               f"writable file with --db (reading it works: store list, predict-only compile)")

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
        return self.add_all(profile, space, arch, input_shape, target, [m])[0]

    def add_all(self, profile: str, space: str, arch: str, input_shape: tuple[int, ...], target: dict[str, Any],
                measurements: list[Measurement]) -> list[int]:
        """Write the measurements of one network (one per runtime) in one committed transaction; return their
        ids."""
        import tvm

        digest, facts = host.fingerprint()
        return self._insert([dict(
            profile=profile, runtime=m.runtime, space=space, arch=arch, input_shape=json.dumps(list(input_shape)),
            threads=m.threads, p50_ms=m.stats.p50_ms, p90_ms=m.stats.p90_ms, min_ms=m.stats.min_ms,
            mean_ms=m.stats.mean_ms, std_ms=m.stats.std_ms, spread=m.stats.spread, repeats=m.stats.repeats,
            number=m.stats.number, stable=int(m.stats.stable), target=json.dumps(target, sort_keys=True),
            tvm_version=tvm.__version__, runtime_version=m.runtime_version, machine=digest,
            machine_facts=json.dumps(facts, sort_keys=True), device=m.device, other_cores=m.other_cores,
            under_load=int(m.under_load)) for m in measurements])

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
        self.require_writable()
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
               "stable, machine, device, under_load FROM measurements")
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self.db.execute(sql + " ORDER BY id", args):
            values = list(row)
            values[6] = tuple(json.loads(values[6]))
            values[11], values[14] = bool(values[11]), bool(values[14])
            yield Record(*values)

    def counts(self) -> list[dict[str, Any]]:
        """One row per (profile, runtime, space, device): how many measurements, how many unstable, how many taken
        under load, the newest."""
        sql = ("SELECT profile, runtime, space, device, COUNT(*), SUM(stable = 0), SUM(under_load), MAX(created_at) "
               "FROM measurements GROUP BY profile, runtime, space, device ORDER BY profile, runtime, space, device")
        keys = ("profile", "runtime", "space", "device", "count", "unstable", "under_load", "newest")
        return [dict(zip(keys, row)) for row in self.db.execute(sql)]

    def remove(self, profile: str, device: str | None = None, unstable: bool = False,
               runtime: str | None = None) -> int:
        """Delete the measurements of `profile` (only those of `device`, of `runtime`, the unstable ones, where
        given) in one transaction; return how many."""
        self.require_writable()
        where, args = ["profile = ?"], [profile]
        for column, value in (("device", device), ("runtime", runtime)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if unstable:
            where.append("stable = 0")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db.execute(f"DELETE FROM measurements WHERE {' AND '.join(where)}", args).rowcount

    def vacuum(self) -> tuple[int, int]:
        """Fold the journal into the file and compact it; the file's size (bytes) before and after."""
        self.require_writable()
        before = self._size()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, self._size()

    def _size(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def export_csv(self, out: TextIO, profile: str | None = None) -> int:
        """Every measurement (of `profile`, where given) as CSV rows with a header; return how many."""
        columns = [d[1] for d in self.db.execute("PRAGMA table_info(measurements)")]
        sql, args = "SELECT * FROM measurements", []
        if profile is not None:
            sql, args = sql + " WHERE profile = ?", [profile]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for row in self.db.execute(sql + " ORDER BY id", args):
            writer.writerow(row)
            count += 1
        return count

    def latest(self, profile: str, space: str, input_shape: tuple[int, ...], runtime: str = "tvm") -> dict[str, float]:
        """The newest p50 (ms) of each architecture measured for `profile` on `runtime` with this input shape:
        what the store knows of the device, wherever it was measured (here, or on any device of its fleet).
        Measurements taken under load are left out: they are suspect until measured again."""
        return {r.arch: r.p50_ms for r in self.records(profile=profile, runtime=runtime, space=space)
                if r.input_shape == tuple(input_shape) and not r.under_load}

    def columns(self, space: str, input_shape: tuple[int, ...]) -> dict[str, dict[str, float]]:
        """Every (profile, runtime) measured on `space` at `input_shape`, as a latency column named
        PROFILE:RUNTIME (`latest`'s p50 per architecture): what meta-training adds to a benchmark's columns."""
        pairs = sorted({(c["profile"], c["runtime"]) for c in self.counts() if c["space"] == space})
        found = {f"{p}:{r}": self.latest(p, space, input_shape, r) for p, r in pairs}
        return {name: column for name, column in found.items() if column}


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
    profile = as_profile(profile)
    runtime = get_runtime(runtime or profile.runtime).name
    sp = configure(space, profile.batch)
    latencies = read_latencies(path, sp)
    with Store(db) as store:
        ids = store.add_imported(profile.name, runtime, sp.name, sp.input_shape, TARGETS.get(profile.target).tvm,
                                 latencies, str(path))
        return Imported(profile.name, runtime, ids, store.path)
