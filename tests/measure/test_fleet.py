"""Fleets on a real loopback tracker with real RPC servers: status, parallel measurement, devices that hang,
disconnect or disagree, and a tracker that is down."""
import os
import signal
import sqlite3
import threading
import time

import numpy as np
import pytest

from edgenas.device.profile import Profile
from edgenas.errors import EdgenasError
from edgenas.measure.fleet import Fleet, Job, disagreeing
from edgenas.measure.loopback import free_port
from edgenas.measure.timing import Timing
from edgenas.measure.tracker import Remote, devices, status

from ..conftest import ARCH, ARCH_CONST, fails_with

FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=5, max_repeats=20, max_seconds=3)
# Sessions long enough (about a second) that a device signalled while busy is surely mid-measurement.
STEADY = Timing(warmup_s=0.2, min_repeat_ms=20, min_repeats=25, max_repeats=25, max_seconds=3)
# The servers share this machine: their threads share its cores (TVM's default pins every server to core 0).
CPUS = tuple(sorted(os.sched_getaffinity(0)))
ARCHS = [ARCH, ARCH_CONST, "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"]


@pytest.fixture(scope="module")
def tracker():
    """One real tracker for the module; each test registers its servers under a key of its own."""
    from edgenas.measure.loopback import LoopbackFleet

    with LoopbackFleet() as fleet:
        yield fleet


@pytest.fixture(scope="module")
def shared(tracker):
    """Two servers under the key 'shared' for the tests that leave their devices as they found them."""
    return tracker.add_servers("shared", 2)


@pytest.fixture
def key(request):
    return request.node.name.removeprefix("test_")[:40]


@pytest.fixture(scope="module")
def built(small, tmp_path_factory):
    """Three small networks compiled for this machine: the libraries fleet jobs time."""
    from edgenas.device.profile import PROFILES
    from edgenas.pipeline.build import build

    host = PROFILES.get("host")
    return [build(host, arch, tmp_path_factory.mktemp(f"lib{i}"), space=small) for i, arch in enumerate(ARCHS)]


def board(tmp_path, tracker: str, key: str, name: str = "board", call_timeout_s: float = 10) -> Profile:
    """An RPC profile of this machine behind `tracker`, timed with one thread (servers share this machine)."""
    from edgenas.device.profile import load_profile

    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ndescription: this machine behind a tracker\nkind: cpu\ntarget: native\n"
                    f"target_options: {{num-cores: 1}}\nbatch: 1\nmeasure: {{via: rpc, tracker: '{tracker}', "
                    f"key: {key}, call_timeout_s: {call_timeout_s}, cpus: {list(CPUS)}}}\n")
    return load_profile(path)


def when_busy(fleet, addresses, action, after: threading.Event | None = None) -> threading.Thread:
    """In the background: once `after` is set, when one of `addresses` has served a session for 0.2 s (so it is
    well into a measurement, not closing one), `action` it."""
    def watch():
        deadline = time.time() + 300
        since: dict[str, float] = {}
        while time.time() < deadline:
            if after is None or after.is_set():
                for a in addresses:
                    if not fleet.busy(a):
                        since.pop(a, None)
                    elif time.time() - since.setdefault(a, time.time()) >= 0.2:
                        action(a)
                        return
            time.sleep(0.01)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_status_shows_keys_devices_free_and_busy(tracker, shared):
    keys = status(tracker.tracker)
    assert keys["shared"].servers == tuple(sorted(shared)) and keys["shared"].free == 2
    assert keys["shared"].busy == 0 and keys["shared"].pending == 0
    assert devices(Remote(tracker.tracker, "shared")) == tuple(sorted(shared))
    with pytest.raises(EdgenasError, match="no device is registered under key 'tablets'.*keys: .*shared"):
        devices(Remote(tracker.tracker, "tablets"))


def test_a_tracker_that_is_down_or_not_a_tracker_is_a_clear_error(shared):
    with pytest.raises(EdgenasError, match=r"cannot reach the RPC tracker at 127\.0\.0\.1:\d+ .*start it"):
        status(f"127.0.0.1:{free_port()}")
    with pytest.raises(EdgenasError, match=f"{shared[0]} .*(not a TVM RPC tracker|does not answer as)"):
        status(shared[0])


def test_devices_that_disagree_with_their_siblings_are_flagged():
    assert disagreeing({"a": 1.0, "b": 1.05, "c": 0.97}) == {}
    flagged = disagreeing({"a": 1.0, "b": 1.05, "c": 3.1, "d": 0.98})
    assert list(flagged) == ["c"] and flagged["c"] == pytest.approx(3.1)
    assert set(disagreeing({"a": 1.0, "b": 3.0})) == {"a", "b"}, "two that disagree: either may be wrong"
    assert disagreeing({"a": 1.0}) == {}


def test_jobs_spread_over_every_device_and_a_hung_one_is_dropped(tracker, key, built):
    """Eight jobs over two servers; one server stops answering (SIGSTOP) mid-measurement: its job is retried
    on the other, and every job finishes exactly once."""
    servers = tracker.add_servers(key, 2)
    remote = Remote(tracker.tracker, key, call_timeout_s=3, cpus=CPUS)
    jobs = [Job(f"job{i}", (built[i % 3].library.path,), built[i % 3].onnx.reference_input) for i in range(8)]
    finished: list[str] = []
    stopped = []
    first = threading.Event()

    def arrived(result):
        finished.append(result.job.key)
        first.set()
        expected = built[int(result.job.key[3:]) % 3].onnx.reference_outputs[0]
        assert np.max(np.abs(result.measurements[0].outputs[0] - expected)) <= 1e-4
        assert result.device in servers and result.measurements[0].device == result.device

    watcher = when_busy(tracker, servers, lambda a: (stopped.append(a), tracker.signal(a, signal.SIGSTOP)),
                        after=first)
    report = Fleet(remote, threads=1, timing=STEADY, canary=True).run(jobs, arrived)
    watcher.join(timeout=1)
    assert sorted(finished) == sorted(j.key for j in jobs), "every job finished exactly once"
    assert report.done == 8 and not report.failed
    assert stopped and "hung" in report.dropped[stopped[0]] and report.retried >= 1
    assert set(report.canary_ms) <= set(servers) and report.canary_ms


def test_a_job_that_fails_on_a_healthy_device_is_reported_not_retried(tracker, shared, tmp_path, built):
    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not a library")
    jobs = [Job("bad", (bad,), built[0].onnx.reference_input),
            Job("good", (built[0].library.path,), built[0].onnx.reference_input)]
    done = []
    report = Fleet(Remote(tracker.tracker, "shared", cpus=CPUS), threads=1, timing=FAST).run(jobs, done.append)
    assert [r.job.key for r in done] == ["good"]
    assert list(report.failed) == ["bad"]
    device, _, why = report.failed["bad"].partition(": ")
    assert device in shared and "timing: " in why and "Failed to load dynamic shared library" in why
    assert not report.dropped and report.retried == 0


@pytest.mark.slow  # builds ten networks and kills a server mid-run: ~1 min
def test_measure_across_two_servers_with_one_killed_stores_each_arch_once(tracker, key, small, tmp_path):
    """The issue's acceptance test: a real tracker and two real servers, ten architectures, one server killed
    in the middle of a measurement; every architecture ends with exactly one stored measurement, and a rerun
    measures nothing again."""
    from edgenas.pipeline.measure_archs import measure_archs

    servers = tracker.add_servers(key, 2)
    profile = board(tmp_path, tracker.tracker, key)
    archs = small.sample(10, seed=1)
    db = tmp_path / "db.sqlite"
    killed, said = [], []
    two_stored = threading.Event()

    def log(message):
        said.append(message)
        if sum(m.startswith("[") for m in said) >= 2:
            two_stored.set()

    watcher = when_busy(tracker, servers, lambda a: (killed.append(a), tracker.signal(a, signal.SIGKILL)),
                        after=two_stored)
    run = measure_archs(profile, archs, space=small, db=db, timing=STEADY, log=log)
    watcher.join(timeout=1)
    rows = sqlite3.connect(db).execute("SELECT arch, COUNT(*), MIN(device) FROM measurements GROUP BY arch").fetchall()
    assert sorted(r[0] for r in rows) == sorted(archs) and all(r[1] == 1 for r in rows)
    assert {r[2] for r in rows} <= set(servers)
    assert len(run.rows) == 10 and not run.failed and not run.skipped
    assert killed and killed[0] in run.fleet.dropped and run.fleet.retried >= 1
    assert any(m.startswith(f"dropped {killed[0]}") for m in said)

    again = measure_archs(profile, archs, space=small, db=db, timing=FAST)
    assert again.rows == [] and sorted(again.skipped) == sorted(archs)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 10


def test_fleet_measurements_condition_generation_like_local_ones(tracker, shared, small, tmp_path):
    """The support set of a profile is what the store holds for it, wherever it was measured."""
    from edgenas.pipeline.measure_archs import measure_archs
    from edgenas.spaces import configure
    from edgenas.store import Store

    profile = board(tmp_path, tracker.tracker, "shared")
    archs = small.sample(2, seed=3)
    run = measure_archs(profile, archs, space=small, db=tmp_path / "db.sqlite", timing=FAST)
    with Store(tmp_path / "db.sqlite") as store:
        support = store.latest(profile.name, small.name, configure(small, profile.batch).input_shape)
    # a timing taken while the server's other processes kept it busy is stored, flagged, and not support
    expected = {r["arch"]: r["tvm"]["p50_ms"] for r in run.rows if not r["tvm"]["under_load"]}
    assert len(run.rows) == 2 and support == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow  # times a network on two servers: ~16 s
def test_a_device_far_slower_than_its_sibling_is_flagged(tracker, key, built):
    """One server throttled (stopped 20 ms of every 25, like a board at a fifth of its clock) times the reference
    library several times slower than its sibling."""
    slow, fast = tracker.add_servers(key, 2)
    running = threading.Event()
    running.set()

    def throttle():
        while running.is_set():
            tracker.signal(slow, signal.SIGSTOP)
            time.sleep(0.02)
            tracker.signal(slow, signal.SIGCONT)
            time.sleep(0.005)

    thread = threading.Thread(target=throttle, daemon=True)
    thread.start()
    jobs = [Job(f"job{i}", (built[0].library.path,), built[0].onnx.reference_input) for i in range(4)]
    said = []
    try:
        report = Fleet(Remote(tracker.tracker, key, cpus=CPUS), threads=1, timing=FAST, parallel=2,
                       canary=True, log=said.append).run(jobs, lambda r: None)
    finally:
        running.clear()
        thread.join()
    assert report.done == 4 and set(report.canary_ms) == {slow, fast}, report
    assert report.canary_ms[slow] > 1.5 * report.canary_ms[fast], report
    assert report.flagged[slow] > 1.5, "with two devices both are named; the ratio says which is off"
    assert any(m.startswith(f"flagged {slow}") for m in said)


def test_fleet_status_on_the_command_line(tracker, shared):
    import json
    import subprocess
    import sys


    out = subprocess.run([sys.executable, "-m", "edgenas", "fleet", "status", "--tracker", tracker.tracker],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"tracker {tracker.tracker}: ") and all(f"\n  {server}\n" in out for server in shared)
    assert [line.split() for line in out.splitlines() if line.startswith("shared")] == [["shared", "2", "2", "0", "0"]]
    as_json = json.loads(subprocess.run([sys.executable, "-m", "edgenas", "fleet", "status", "--tracker",
                                         tracker.tracker, "--json"], capture_output=True, text=True,
                                        check=True).stdout)
    assert as_json["keys"]["shared"] == {"devices": sorted(shared), "free": 2, "busy": 0, "pending": 0}
    fails_with("cannot reach the RPC tracker at 127.0.0.1:", "fleet", "status", "--tracker", f"127.0.0.1:{free_port()}")
    fails_with("--tracker 'localhost' is not HOST:PORT", "fleet", "status", "--tracker", "localhost")
    fails_with("give the tracker with --tracker HOST:PORT, or an RPC profile", "fleet", "status")
    fails_with("profile 'raspi4' is not measured through a tracker", "fleet", "status", "-t", "raspi4")


def test_measure_inputs_are_checked(tmp_path, small):
    """Architecture files, --parallel without a fleet and a tracker that is down: one-line errors, before any
    network is built."""
    from edgenas.device.profile import load_profile
    from edgenas.pipeline.measure_archs import measure_archs
    from edgenas.spaces import read_archs


    fails_with("name the architectures to measure", "measure", "-t", "host")
    (tmp_path / "bad.txt").write_text(f"# archs\n{ARCH}\n|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    fails_with("bad.txt:3: ", "measure", "--archs", str(tmp_path / "bad.txt"))
    (tmp_path / "good.csv").write_text(f"index,arch,note\n4,{ARCH},x\n5,{ARCH_CONST},y\n")
    assert read_archs(tmp_path / "good.csv", small) == [small.canonical(ARCH), small.canonical(ARCH_CONST)]
    with pytest.raises(EdgenasError, match="cannot read"):
        read_archs(tmp_path / "missing.txt", small)
    (tmp_path / "no-column.csv").write_text("index,cell\n0,x\n")
    with pytest.raises(EdgenasError, match="a CSV needs an 'arch' column"):
        read_archs(tmp_path / "no-column.csv", small)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(EdgenasError, match="holds no architectures"):
        read_archs(tmp_path / "empty.txt", small)
    with pytest.raises(EdgenasError, match="--parallel 2 needs a fleet: profile 'host' is measured on this machine"):
        measure_archs("host", [ARCH], space=small, parallel=2, db=tmp_path / "db.sqlite")
    gone = tmp_path / "gone.yaml"
    gone.write_text("name: gone\ndescription: d\nkind: cpu\ntarget: native\nbatch: 1\n"
                    f"measure: {{via: rpc, tracker: '127.0.0.1:{free_port()}', key: boards}}\n")
    with pytest.raises(EdgenasError, match="cannot reach the RPC tracker"):
        measure_archs(load_profile(gone), [ARCH], space=small, db=tmp_path / "db.sqlite")
