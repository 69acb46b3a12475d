import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgenas.errors import EdgenasError
from edgenas.measure.timing import Measurement, Stats
from edgenas.store import MIGRATIONS, SCHEMA_VERSION, Store

from .conftest import ARCH

ROOT = Path(__file__).resolve().parent.parent


def fake_measurement(p50: float) -> Measurement:
    """A measurement as `measure` returns it (the store does not care how it was timed)."""
    stats = Stats.of([p50 * 0.99, p50, p50 * 1.01], number=3, max_spread=0.05)
    return Measurement("tvm", "0.27.0", 2, stats, np.zeros((1, 10), np.float32))


def test_records_round_trip(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        first = store.add("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(5.0))
        store.add("raspi4", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(9.0))
        rows = list(store.records(profile="host"))
    assert [r.id for r in rows] == [first]
    r = rows[0]
    assert (r.profile, r.runtime, r.arch, r.input_shape, r.p50_ms, r.stable) == \
        ("host", "tvm", ARCH, (1, 3, 32, 32), 5.0, True)
    raw = sqlite3.connect(tmp_path / "db.sqlite").execute(
        "SELECT edgenas_version, tvm_version, machine, machine_facts FROM measurements").fetchone()
    assert raw[0] and raw[1] and len(raw[2]) == 16 and "cpu" in json.loads(raw[3])


def test_wal_and_schema_version(tmp_path):
    Store(tmp_path / "db.sqlite").close()
    db = sqlite3.connect(tmp_path / "db.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db.sqlite"
    Store(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(EdgenasError, match=f"schema v{SCHEMA_VERSION + 1}, this edgenas knows v{SCHEMA_VERSION}"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello " * 1000)
    with pytest.raises(EdgenasError, match="is not a usable edgenas store.*--db"):
        Store(path)


def test_a_crash_loses_nothing_already_written(tmp_path):
    """A process killed mid-run (no close, no cleanup, a transaction open) keeps every measurement it wrote."""
    path = tmp_path / "db.sqlite"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_store import fake_measurement
        from edgenas.store import Store
        store = Store({str(path)!r})
        for i in range(5):
            store.add("host", "nb201", "arch%d" % i, (1, 3, 32, 32), {{}}, fake_measurement(1.0 + i))
        cols = ", ".join(r[1] for r in store.db.execute("PRAGMA table_info(measurements)") if r[1] != "id")
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute(f"INSERT INTO measurements ({{cols}}) SELECT {{cols}} FROM measurements WHERE id = 1")
        os._exit(9)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    with Store(path) as store:
        rows = list(store.records())
    assert [r.arch for r in rows] == [f"arch{i}" for i in range(5)]


def test_a_store_of_the_first_schema_is_migrated_and_keeps_its_rows(tmp_path):
    """v1 files (before measurements named their device) open as v2: old rows were taken on this machine."""
    path = tmp_path / "v1.sqlite"
    with Store(path) as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(2.0))
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(measurements)") if r[1] not in ("id", "device")]
    db.executescript(f"CREATE TABLE old AS SELECT {', '.join(cols)} FROM measurements; DROP TABLE measurements;"
                     + MIGRATIONS[0] + f"; INSERT INTO measurements ({', '.join(cols)}) SELECT * FROM old; "
                     "DROP TABLE old; PRAGMA user_version = 1;")
    db.close()
    with Store(path) as store:
        (record,) = store.records()
        remote = Measurement("tvm", "0.27.0", 1, fake_measurement(3.0).stats, None, device="10.0.0.7:9090")
        store.add("board", "nb201", ARCH, (1, 3, 32, 32), {}, remote)
        devices = [r.device for r in store.records()]
    assert (record.arch, record.p50_ms, record.device) == (ARCH, 2.0, "local")
    assert devices == ["local", "10.0.0.7:9090"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_latest_is_the_newest_measurement_of_each_arch_at_the_input_shape(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(5.0))
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(4.0))
        store.add("host", "nb201", "other", (1, 3, 64, 64), {}, fake_measurement(9.0))
        store.add("raspi4", "nb201", "other", (1, 3, 32, 32), {}, fake_measurement(9.0))
        assert store.latest("host", "nb201", (1, 3, 32, 32)) == {ARCH: 4.0}
        assert store.latest("host", "nb201", (1, 3, 32, 32), runtime="onnxruntime") == {}
