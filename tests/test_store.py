import json
import os
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
    """v1 files (before measurements named their device and the machine's load) open as the newest schema: old
    rows were taken on this machine, with their load unknown (not flagged)."""
    path = tmp_path / "v1.sqlite"
    with Store(path) as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(2.0))
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(measurements)")
            if r[1] not in ("id", "device", "other_cores", "under_load")]
    db.executescript(f"CREATE TABLE old AS SELECT {', '.join(cols)} FROM measurements; DROP TABLE measurements;"
                     + MIGRATIONS[0] + f"; INSERT INTO measurements ({', '.join(cols)}) SELECT * FROM old; "
                     "DROP TABLE old; PRAGMA user_version = 1;")
    db.close()
    with Store(path) as store:
        (record,) = store.records()
        remote = Measurement("tvm", "0.27.0", 1, fake_measurement(3.0).stats, None, device="10.0.0.7:9090")
        store.add("board", "nb201", ARCH, (1, 3, 32, 32), {}, remote)
        devices = [r.device for r in store.records()]
    assert (record.arch, record.p50_ms, record.device, record.under_load) == (ARCH, 2.0, "local", False)
    assert devices == ["local", "10.0.0.7:9090"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_latest_is_the_newest_measurement_of_each_arch_at_the_input_shape(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(5.0))
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(4.0))
        store.add("host", "nb201", "other", (1, 3, 64, 64), {}, fake_measurement(9.0))
        store.add("raspi4", "nb201", "other", (1, 3, 32, 32), {}, fake_measurement(9.0))
        assert store.latest("host", "nb201", (1, 3, 32, 32)) == {ARCH: 4.0}
        assert store.latest("host", "nb201", (1, 3, 32, 32), runtime="onnxruntime") == {}


PIXEL_ARCHS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
               "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|avg_pool_3x3~2|")


def test_import_adds_latencies_measured_elsewhere_to_the_support_set(tmp_path):
    from edgenas.spaces import get_space
    from edgenas.store import import_latencies

    csv = tmp_path / "pixel.csv"
    csv.write_text(f"# LiteRT benchmark_model on a Pixel 7, 4 threads\narch,latency_ms\n{PIXEL_ARCHS[0]},4.25\n"
                   f"{PIXEL_ARCHS[1]} , 1.5\n")
    done = import_latencies(csv, "pixel", db=tmp_path / "db.sqlite")
    assert (done.profile, done.runtime, len(done.ids)) == ("pixel", "litert", 2)
    assert "imported 2 litert latencies of 'pixel'" in done.summary()
    sp = get_space("nb201")
    with Store(tmp_path / "db.sqlite") as store:
        assert store.latest("pixel", "nb201", sp.input_shape, runtime="litert") == \
            {sp.canonical(PIXEL_ARCHS[0]): 4.25, sp.canonical(PIXEL_ARCHS[1]): 1.5}
        assert {r.device for r in store.records(profile="pixel")} == {"imported"}
        assert not store.latest("pixel", "nb201", sp.input_shape, runtime="tvm")


@pytest.mark.parametrize("text, message", [
    ("arch\n{a},1\n", r"pixel.csv: a CSV needs the columns arch, latency_ms \(header: arch\)"),
    ("arch,latency_ms\n{a},fast\n", r"pixel.csv:2: latency 'fast' is not a positive number of milliseconds"),
    ("arch,latency_ms\n{a},-1\n", r"pixel.csv:2: latency '-1' is not a positive number"),
    ("arch,latency_ms\n{a},1\n{a},nan\n", r"pixel.csv:3: latency 'nan' is not a positive number"),
    ("arch,latency_ms\n{a},1\n|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|,2\n",
     r"pixel.csv:3: arch .* unknown operation 'nor_conv_5x5'"),
    ("arch,latency_ms\n{a},1\n\n{a},2\n", r"pixel.csv:4: .* is listed again \(first on line 2\)"),
    ("arch,latency_ms\n", r"pixel.csv holds no latencies under its header"),
])
def test_import_checks_every_line_and_writes_nothing_on_a_bad_one(tmp_path, text, message):
    from edgenas.store import import_latencies

    csv = tmp_path / "pixel.csv"
    csv.write_text(text.format(a=PIXEL_ARCHS[0]))
    with pytest.raises(EdgenasError, match=message):
        import_latencies(csv, "pixel", db=tmp_path / "db.sqlite")
    with Store(tmp_path / "db.sqlite") as store:
        assert not list(store.records()), "a file is imported whole or not at all"


def test_import_on_the_command_line(tmp_path):
    from .conftest import fails_with

    csv = tmp_path / "raspi.csv"
    csv.write_text(f"arch,latency_ms\n{PIXEL_ARCHS[0]},31.5\n")
    db = str(tmp_path / "db.sqlite")
    run = subprocess.run([sys.executable, "-m", "edgenas", "store", "import", str(csv), "--target", "raspi4", "--db", db],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("imported 1 tvm latencies of 'raspi4'"), run.stderr
    fails_with("no runtime 'litrt'; did you mean 'litert'?", "store", "import", str(csv), "-t", "raspi4", "--runtime", "litrt", "--db", db)
    fails_with("no profile 'raspi5'", "store", "import", str(csv), "-t", "raspi5", "--db", db)


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "app.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(EdgenasError, match=r"app.sqlite is an SQLite file of something else \(tables: users\), not "
                                           r"an edgenas store; pass another file with --db"):
        Store(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]


def test_a_read_only_store_is_read_and_says_it_cannot_record(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgenas.cli import cli

    path = tmp_path / "db.sqlite"
    with Store(path) as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(5.0))
    readable_only = os.access  # as for a file of another user (root is never refused, so say it is)
    monkeypatch.setattr("edgenas.store.os.access", lambda p, mode: mode == os.R_OK and readable_only(p, mode))
    with Store(path) as store:
        assert not store.writable and store.latest("host", "nb201", (1, 3, 32, 32)) == {ARCH: 5.0}
        with pytest.raises(EdgenasError, match="db.sqlite is read-only, so measurements cannot be recorded"):
            store.add("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(6.0))
    listed = CliRunner().invoke(cli, ["store", "list", "--db", str(path)])
    assert listed.exit_code == 0 and "(read-only: nothing can be recorded): 1 measurements" in listed.output
    removed = CliRunner().invoke(cli, ["store", "remove", "-t", "host", "--db", str(path)])
    assert removed.exit_code == 2 and removed.output.startswith("error: the store ")
    with pytest.raises(EdgenasError, match="cannot create the store at .* not writable"):
        Store(tmp_path / "new.sqlite")


def test_the_runtimes_of_one_network_are_stored_together_or_not_at_all(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        onnxruntime = Measurement("onnxruntime", "1.2", 2, fake_measurement(7.0).stats, np.zeros((1, 10), np.float32))
        ids = store.add_all("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"},
                            [fake_measurement(5.0), onnxruntime])
        assert len(ids) == 2 and {r.runtime for r in store.records()} == {"tvm", "onnxruntime"}
        broken = Measurement(None, "1.2", 2, fake_measurement(7.0).stats, np.zeros((1, 10), np.float32))
        with pytest.raises(sqlite3.IntegrityError):  # the second row breaks: the first is rolled back with it
            store.add_all("raspi4", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, [fake_measurement(5.0), broken])
        assert not list(store.records(profile="raspi4"))


def test_store_upkeep_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from edgenas.cli import cli

    path = tmp_path / "db.sqlite"
    unstable = Measurement("tvm", "0.27.0", 2, Stats.of([1.0, 2.0, 4.0], number=3, max_spread=0.05),
                           np.zeros((1, 10), np.float32))
    with Store(path) as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(5.0))
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, unstable)
        store.add("raspi4", "nb201", ARCH, (1, 3, 32, 32), {"kind": "llvm"}, fake_measurement(9.0))

    def run(*args):
        return CliRunner().invoke(cli, ["store", *args, "--db", str(path)])

    listed = json.loads(run("list", "--json").output)
    assert [(g["profile"], g["count"], g["unstable"]) for g in listed["groups"]] == [("host", 2, 1), ("raspi4", 1, 0)]
    shown = run("show", "-t", "host").output.splitlines()
    assert len(shown) == 3 and "UNSTABLE" in shown[2] and "UNSTABLE" not in shown[1]
    assert run("show", "-t", "pixel").output.startswith("error: the store holds no measurements of 'pixel'")
    out = tmp_path / "all.csv"
    assert run("export", "-o", str(out)).exit_code == 0
    rows = out.read_text().splitlines()
    assert rows[0].startswith("id,created_at,profile,runtime") and len(rows) == 4
    assert not list(tmp_path.glob("*.partial"))
    assert run("remove", "-t", "host", "--unstable").output == "removed 1 measurement of 'host'\n"
    assert [g["count"] for g in json.loads(run("list", "--json").output)["groups"]] == [1, 1]
    assert run("remove", "-t", "raspi4").output == "removed 1 measurement of 'raspi4'\n"
    assert run("vacuum").exit_code == 0
    with Store(path) as store:
        assert [r.p50_ms for r in store.records()] == [5.0]


def test_a_measurement_under_load_is_kept_but_not_support(tmp_path):
    loaded = Measurement("tvm", "0.27.0", 2, fake_measurement(9.0).stats, None, other_cores=1.6, under_load=True)
    with Store(tmp_path / "db.sqlite") as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(5.0))
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, loaded)
        assert store.latest("host", "nb201", (1, 3, 32, 32)) == {ARCH: 5.0}, "the loaded one is newer, not used"
        assert [r.under_load for r in store.records()] == [False, True]
        assert [(g["count"], g["under_load"]) for g in store.counts()] == [(2, 1)]


def test_columns_are_what_each_profile_and_runtime_measured_on_a_space(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(5.0))
        store.add("host", "nb201", ARCH, (1, 3, 32, 32), {}, fake_measurement(4.0))
        store.add_all("raspi4", "nb201", "other", (1, 3, 32, 32), {},
                      [fake_measurement(9.0), Measurement("onnxruntime", "1.0", 4, fake_measurement(7.0).stats, None)])
        store.add("host", "nb201", "other", (1, 3, 64, 64), {}, fake_measurement(9.0))  # another input
        store.add("host", "fbnet", "other", (1, 3, 32, 32), {}, fake_measurement(9.0))  # another space
        assert store.columns("nb201", (1, 3, 32, 32)) == {"host:tvm": {ARCH: 4.0}, "raspi4:onnxruntime": {"other": 7.0},
                                                          "raspi4:tvm": {"other": 9.0}}
        assert store.columns("effnet", (1, 3, 224, 224)) == {}
