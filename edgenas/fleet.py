"""Device fleets behind TVM's RPC tracker: what a tracker holds (`status`), and timing libraries on the devices
registered under a key, with faults survived (`Fleet`).

The tracker assigns the devices; edgenas adds no scheduler of its own. Each job in flight runs in a worker
process of its own (spawned, so it shares no TVM or PyTorch state with this one): it asks the tracker for a free
device of the key, uploads the job's libraries, times them there and sends the result back, reporting after
every RPC call. A device that says nothing for `Remote.call_timeout_s` is taken as hung: its worker is killed,
which closes the connection, and the job goes back to the queue for another device of the key, as it does when
a device disconnects mid-measurement. Such a device is dropped from the job; the tracker hands out only
servers that registered again, so a hung one is not assigned again, and one that recovers is used like any
other. A result is accepted once, from the worker that holds the job: no job is lost or finished twice.

With `canary=True`, every device that serves a job also times one reference library (the first job's) once
per run; a device whose time for it is far from its siblings' median is flagged (`disagreeing`).
"""
from __future__ import annotations

import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import EdgenasError
from .measure import Measurement, Remote, Stats, Timing, time_interleaved, vm_session

HEARTBEAT_S = 0.5  # a worker says it is alive at most this often while it works on a device
STATUS_EVERY_S = 5.0  # while a job waits for a device, how often the tracker is asked whether the key has any


@dataclass(frozen=True)
class KeyStatus:
    key: str
    servers: tuple[str, ...]  # HOST:PORT of every RPC server registered under the key
    free: int  # servers waiting for a session
    pending: int  # requests waiting for a free server

    @property
    def busy(self) -> int:
        return max(0, len(self.servers) - self.free)


def status(tracker: str) -> dict[str, KeyStatus]:
    """Every key the tracker knows, with its servers, how many are free, and the requests waiting."""
    from tvm.rpc import base

    sock = _open_tracker(tracker, timeout=10.0)
    try:
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        code, summary = base.recvjson(sock)
    except OSError as e:
        raise EdgenasError(f"the RPC tracker at {tracker} did not answer ({_reason(e)}); check that it runs") from None
    finally:
        sock.close()
    servers: dict[str, list[str]] = {}
    for info in summary.get("server_info", []):
        key = info.get("key", "").partition(":")[2]  # "server:KEY"
        servers.setdefault(key, []).append(":".join(map(str, info.get("addr", ("?", "?")))))
    queues = summary.get("queue_info", {})
    return {k: KeyStatus(k, tuple(sorted(servers.get(k, []))), queues.get(k, {}).get("free", 0),
                         queues.get(k, {}).get("pending", 0))
            for k in sorted(set(servers) | set(queues))}


def devices(remote: Remote) -> tuple[str, ...]:
    """The servers registered under the remote's key; a clear error when the tracker is down or has none."""
    keys = status(remote.tracker)
    if remote.key not in keys or not keys[remote.key].servers:
        raise EdgenasError(f"no device is registered under key '{remote.key}' at {remote.tracker} (keys: "
                           f"{', '.join(k for k in keys if keys[k].servers) or 'none'}); start an rpc_server with "
                           f"--key {remote.key}")
    return keys[remote.key].servers


def _open_tracker(tracker: str, timeout: float) -> socket.socket:
    """A connection to the tracker after the protocol's handshake; a clear error when it is down or not one."""
    from tvm.rpc import base

    host, _, port = tracker.rpartition(":")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError) as e:
        raise EdgenasError(f"cannot reach the RPC tracker at {tracker} ({_reason(e)}); start it (python -m "
                           f"tvm.exec.rpc_tracker --host 127.0.0.1) or fix measure.tracker in the profile") from None
    try:
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", base.recvall(sock, 4))[0]
    except OSError as e:
        sock.close()
        raise EdgenasError(f"{tracker} accepts connections but does not answer as a TVM RPC tracker "
                           f"({_reason(e)}); check the address") from None
    if magic != base.RPC_TRACKER_MAGIC:
        sock.close()
        raise EdgenasError(f"{tracker} is not a TVM RPC tracker (an RPC server's port?); give the tracker's address")
    return sock


def _reason(e: BaseException) -> str:
    """A short reason for a socket or RPC error: its OS error text, else the last line of its message (TVM puts
    the cause there, after tracebacks and "Error caught from RPC call:"), else its type."""
    if isinstance(e, socket.timeout):
        return "timed out"
    lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.strip().endswith("RPC call:")]
    return getattr(e, "strerror", None) or (lines[-1][:300] if lines else type(e).__name__)


def disagreeing(canary_ms: dict[str, float], factor: float = 1.5) -> dict[str, float]:
    """Devices whose time for the same library differs from the median of their siblings' by more than
    `factor` either way: device -> its time over that median. With two devices, both are named."""
    flagged = {}
    for device, ms in canary_ms.items():
        siblings = [v for d, v in canary_ms.items() if d != device]
        if siblings:
            ratio = ms / float(np.median(siblings))
            if max(ratio, 1 / ratio) > factor:
                flagged[device] = ratio
    return flagged


@dataclass(frozen=True)
class Job:
    key: Any  # the caller's name for the job, e.g. an architecture
    libraries: tuple[Path, ...]  # timed interleaved in one session on one device
    x: np.ndarray  # the input of every library


@dataclass(frozen=True)
class Result:
    job: Job
    device: str  # HOST:PORT of the RPC server that timed it
    measurements: tuple[Measurement, ...]  # one per library
    attempts: int  # 1 unless a device failed or hung under an earlier attempt


@dataclass
class FleetReport:
    done: int = 0
    failed: dict[Any, str] = field(default_factory=dict)  # job key -> why it was given up
    jobs_per_device: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # device -> what happened to it
    retried: int = 0
    canary_ms: dict[str, float] = field(default_factory=dict)  # device -> p50 of the reference library
    flagged: dict[str, float] = field(default_factory=dict)  # device -> its canary time over its siblings' median
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "failed": {str(k): v for k, v in self.failed.items()},
                "jobs_per_device": self.jobs_per_device, "dropped": self.dropped, "retried": self.retried,
                "canary_ms": {d: round(v, 6) for d, v in self.canary_ms.items()},
                "flagged": {d: round(v, 4) for d, v in self.flagged.items()}, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True)
class _Task:
    """What a worker process is sent for one job."""

    remote: Remote
    libraries: tuple[Path, ...]
    x: np.ndarray
    threads: int
    timing: Timing
    canary: Path | None  # time this too, unless the device is in `calibrated`
    calibrated: frozenset[str]


class _Worker:
    """A worker process (`python -c ... _serve`), spoken to over a socket pair with multiprocessing's framing. A
    plain subprocess, not multiprocessing's spawn: that would re-import the caller's main script."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                           if p)}
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys; from edgenas.fleet import _serve; "
                                      "_serve(int(sys.argv[1]))", str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.job: Job | None = None
        self.attempt = 0
        self.device: str | None = None
        self.heard = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.conn.close()

    def close(self) -> None:
        """End the worker: an idle one exits when its socket closes, a busy one on SIGTERM once its current RPC
        call returns, closing its session cleanly; one still there after a few seconds is killed."""
        self.conn.close()
        if self.job is not None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


class Fleet:
    """Time jobs on the devices registered under `remote.key`, `parallel` at a time (default: as many as the
    key has servers when the run starts), each device with `threads` threads."""

    def __init__(self, remote: Remote, threads: int, timing: Timing = Timing(), parallel: int | None = None,
                 attempts: int = 3, canary: bool = False, disagree: float = 1.5,
                 log: Callable[[str], None] = lambda _: None):
        self.remote, self.threads, self.timing = remote, threads, timing
        self.parallel, self.attempts, self.canary, self.disagree, self.log = parallel, attempts, canary, disagree, log

    def run(self, jobs: Iterable[Job], on_result: Callable[[Result], None]) -> FleetReport:
        """Time every job of `jobs` (pulled as devices become free, so a generator can build them meanwhile)
        and call `on_result` once per finished job, in this thread, as results arrive. `on_result` may raise
        EdgenasError to fail the job (say, a wrong output). A job whose device hangs or disconnects is retried
        on another device, `attempts` times in all; a job that fails on a device that is still there, or
        whose attempts are used up, is reported in `failed`."""
        start = time.monotonic()
        servers = devices(self.remote)
        parallel = self.parallel or max(1, len(servers))
        report = FleetReport()
        feed: queue.Queue = queue.Queue()
        stop = threading.Event()
        room = threading.Semaphore(parallel)  # jobs built ahead of a free worker
        threading.Thread(target=_produce, args=(jobs, feed, stop, room), daemon=True,
                         name="edgenas-fleet-feed").start()
        workers = [_Worker() for _ in range(parallel)]  # they start up while the first jobs are built
        pending: deque[tuple[Job, int]] = deque()  # (job, attempts so far)
        canary: Path | None = None
        fed = False
        last_status = time.monotonic()
        try:
            while True:
                while True:  # take what the producer has built
                    try:
                        kind, item = feed.get_nowait()
                    except queue.Empty:
                        break
                    if kind == "error":
                        raise item
                    if kind == "end":
                        fed = True
                    else:
                        canary = canary or (item.libraries[0] if self.canary else None)
                        pending.append((item, 0))
                busy = [w for w in workers if w.job is not None]
                if fed and not pending and not busy:
                    break
                for i, w in enumerate(workers):
                    if not pending:
                        break
                    if w.job is None:
                        if not w.alive():
                            workers[i] = w = _Worker()
                        job, attempt = pending.popleft()
                        room.release()
                        w.job, w.attempt, w.device, w.heard = job, attempt + 1, None, time.monotonic()
                        w.conn.send(_Task(self.remote, job.libraries, job.x, self.threads, self.timing, canary,
                                          frozenset(report.canary_ms)))
                busy = [w for w in workers if w.job is not None]
                for conn in wait([w.conn for w in busy], timeout=0.2):
                    w = next(w for w in busy if w.conn is conn)
                    self._receive(w, pending, report, on_result)
                now = time.monotonic()
                for w in busy:
                    if w.job is not None and w.device is not None and now - w.heard > self.remote.call_timeout_s:
                        self._give_up_device(w, pending, report, f"hung: no answer for "
                                                                 f"{self.remote.call_timeout_s:g} s")
                if any(w.job is not None and w.device is None for w in busy) and now - last_status > STATUS_EVERY_S:
                    last_status = now
                    self._still_there(report)
        finally:
            stop.set()
            for w in workers:
                if w.alive():
                    w.close()
        report.seconds = time.monotonic() - start
        return report

    def _still_there(self, report: FleetReport) -> None:
        """Stop the run with a clear error when the tracker went down or the key has no device left."""
        try:
            devices(self.remote)
        except EdgenasError as e:
            raise EdgenasError(f"{e} ({report.done} jobs were finished before that)") from None

    def _receive(self, w: _Worker, pending: deque, report: FleetReport, on_result) -> None:
        try:
            message = w.conn.recv()
        except (EOFError, OSError):  # the worker process died
            self._give_up_device(w, pending, report, "its worker process ended")
            return
        w.heard = time.monotonic()
        kind = message[0]
        if kind == "device":
            w.device = message[1]
        elif kind == "canary":
            report.canary_ms.setdefault(message[1], message[2].p50_ms)
            flagged = disagreeing(report.canary_ms, self.disagree)
            for device in set(flagged) - set(report.flagged):
                self.log(f"flagged {device}: it times the reference library at {report.canary_ms[device]:.3f} ms, "
                         f"{flagged[device]:.2f}x the median of its siblings; check it before trusting its figures")
            report.flagged = flagged
        elif kind == "done":
            _, device, stats, outputs, version = message
            job = w.job
            w.job = None
            result = Result(job, device, tuple(Measurement("tvm", version, self.threads, s, o, device)
                                               for s, o in zip(stats, outputs)), w.attempt)
            try:
                on_result(result)
            except EdgenasError as e:
                self._fail(report, job, str(e))
                return
            report.done += 1
            report.jobs_per_device[device] = report.jobs_per_device.get(device, 0) + 1
        elif kind == "failed":
            _, device, why, device_alive = message
            if device is None:  # the tracker failed it: is the tracker still there?
                self._still_there(report)
            if device is not None and not device_alive:
                self._give_up_device(w, pending, report, why, kill=False)
            else:  # the device is fine: the job itself fails (it would fail on every device)
                job = w.job
                w.job = None
                self._fail(report, job, why)

    def _fail(self, report: FleetReport, job: Job, why: str) -> None:
        report.failed[job.key] = why
        self.log(f"failed {job.key}: {why}")

    def _give_up_device(self, w: _Worker, pending: deque, report: FleetReport, why: str, kill: bool = True) -> None:
        """The worker's device hung or disconnected: drop it from the job and put the job back in the queue (or
        fail it when its attempts are used up)."""
        job, device = w.job, w.device or "a device"
        w.job = None
        if kill:
            w.kill()
        report.dropped[device] = why
        if w.attempt >= self.attempts:
            self._fail(report, job, f"{device}: {why}; given up after {w.attempt} attempts")
            return
        report.retried += 1
        self.log(f"dropped {device} ({why}); {job.key} goes to another device")
        pending.appendleft((job, w.attempt))


def _produce(jobs: Iterable[Job], feed: queue.Queue, stop: threading.Event, room: threading.Semaphore) -> None:
    """Pull jobs (which may build them) into `feed`, no further ahead than `room` allows."""
    try:
        for job in jobs:
            while not room.acquire(timeout=0.2):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            feed.put(("job", job))
        feed.put(("end", None))
    except BaseException as e:  # noqa: BLE001  (handed to the fleet's thread, which raises it)
        feed.put(("error", e))


def time_remote(remote: Remote, libraries: list[Path], x: np.ndarray, threads: int,
                timing: Timing = Timing()) -> list[Measurement]:
    """Time `libraries` interleaved on one device of the key, with the fleet's retries: one measurement each."""
    results: list[Result] = []
    report = Fleet(remote, threads, timing, parallel=1).run([Job("job", tuple(libraries), x)], results.append)
    if report.failed:
        raise EdgenasError(f"measuring on key '{remote.key}' at {remote.tracker} failed: {report.failed['job']}")
    return list(results[0].measurements)


# ---- the worker process ------------------------------------------------------------------------------------

def _serve(fd: int) -> None:
    """A worker process: for each task sent over the socket `fd`, time it on a device the tracker assigns and send the
    result back, with ('device', addr) once assigned and ('alive',) at least every HEARTBEAT_S while it works."""
    import gc
    import signal

    import tvm  # noqa: F401  (imported once, before the first task)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the fleet's to handle: it ends the workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwinds, so the session is closed cleanly
    conn = Connection(fd)
    while True:
        try:
            task: _Task = conn.recv()
        except (EOFError, OSError):
            return
        message = _run(task, conn)
        # The session is released before the result goes out, so TVM closes its connection cleanly before the
        # fleet may end this process: a TVM rpc_server whose client vanishes mid-session stops serving for good.
        gc.collect()
        conn.send(message)


def _run(task: _Task, conn: Connection) -> tuple:
    """Time one task on a device of the key; the message for the fleet: ('done', ...) or ('failed', ...)."""
    from tvm import rpc

    device, sess, step = None, None, "asking the tracker for a device"
    last = [time.monotonic()]

    def beat() -> None:
        if time.monotonic() - last[0] >= HEARTBEAT_S:
            conn.send(("alive",))
            last[0] = time.monotonic()

    try:
        url, port, matchkey = _request(task.remote)
        device = f"{url}:{port}"
        conn.send(("device", device))
        step = "connecting"
        sess = rpc.connect(url, port, matchkey, session_timeout=task.remote.timeout_s)
        calibrate = task.canary is not None and device not in task.calibrated
        if calibrate and task.canary != task.libraries[0]:
            step = "timing the reference library"
            (canary,), _, _ = _time(sess, task, [task.canary], "canary", beat)
            conn.send(("canary", device, canary))
        step = "timing"
        stats, outputs, version = _time(sess, task, list(task.libraries), "job", beat)
        if calibrate and task.canary == task.libraries[0]:
            conn.send(("canary", device, stats[0]))
        return "done", device, stats, outputs, version
    except Exception as e:  # noqa: BLE001  (TVM's RPC errors, reported to the fleet, which decides)
        return "failed", device, f"{device or task.remote.tracker}: {step}: {type(e).__name__}: {_reason(e)}", \
            _alive(sess)


def _request(remote: Remote) -> tuple[str, int, str]:
    """Ask the tracker for a free server of the key (waits while none is free): its address and match key."""
    from tvm.rpc import base

    sock = _open_tracker(remote.tracker, timeout=10.0)
    try:
        sock.settimeout(None)  # a request waits until a server of the key is free
        base.sendjson(sock, [base.TrackerCode.REQUEST, remote.key, "", 1])
        code, value = base.recvjson(sock)
    finally:
        sock.close()
    if code != base.TrackerCode.SUCCESS:
        raise RuntimeError(f"the tracker refused the request ({value})")
    url, port, matchkey = value
    return url, int(port), matchkey


def _time(sess, task: _Task, libraries: list[Path], prefix: str, beat) -> tuple[list[Stats], list[np.ndarray], str]:
    dev = sess.cuda() if task.remote.device == "cuda" else sess.cpu()
    if task.remote.cpus:  # -3: the threads share these cores (TVM would otherwise pin to core 0 and up)
        cpus = sess.get_function("ffi.Array")(*(str(c) for c in task.remote.cpus))  # built there: RPC passes no lists
        sess.get_function("runtime.config_threadpool")(-3, task.threads, cpus)
    else:  # 1: big cores first (big.LITTLE phones)
        sess.get_function("runtime.config_threadpool")(1, task.threads)
    beat()
    sessions = []
    for i, path in enumerate(libraries):
        name = f"{prefix}{i}-{path.name}"
        sess.upload(str(path), target=name)
        beat()
        sessions.append(vm_session(sess.load_module(name), dev, task.x))
        beat()

    def beating(run):
        def timed(n: int) -> float:
            seconds = run(n)
            beat()
            return seconds
        return timed

    stats = time_interleaved({str(i): beating(s.run) for i, s in enumerate(sessions)}, task.timing)
    return [stats[str(i)] for i in range(len(sessions))], [s.output for s in sessions], sessions[0].version


def _alive(sess) -> bool:
    """Whether the RPC session still answers after an error (then the job, not the device, failed)."""
    if sess is None:
        return False
    try:
        sess.get_function("runtime.config_threadpool")
        return True
    except Exception:  # noqa: BLE001
        return False
