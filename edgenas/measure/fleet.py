"""Device fleets behind TVM's RPC tracker: timing libraries on the devices registered under a key, with faults
survived (`Fleet`).

The tracker assigns the devices; edgenas adds no scheduler of its own. Each job in flight runs in a worker
process of its own (`worker.py`; it shares no TVM or PyTorch state with this one): it asks the tracker for a free
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

from .. import interrupt
from ..errors import EdgenasError
from .timing import Measurement, Timing
from .tracker import Remote, devices
from .worker import Task

STATUS_EVERY_S = 5.0  # while a job waits for a device, how often the tracker is asked whether the key has any


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


class _Worker:
    """A worker process (`python -c ... worker.serve`), spoken to over a socket pair with multiprocessing's framing. A
    plain subprocess, not multiprocessing's spawn: that would re-import the caller's main script."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                           if p)}
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys; from edgenas.measure.worker import serve; "
                                      "serve(int(sys.argv[1]))", str(theirs.fileno())],
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
        whose attempts are used up, is reported in `failed`. Ctrl-C raises in here, so that every RPC session is
        closed on the way out (`interrupt.raising`)."""
        with interrupt.raising():
            return self._run(jobs, on_result)

    def _run(self, jobs: Iterable[Job], on_result: Callable[[Result], None]) -> FleetReport:
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
                        w.conn.send(Task(self.remote, job.libraries, job.x, self.threads, self.timing, canary,
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
