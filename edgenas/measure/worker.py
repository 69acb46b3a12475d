"""The worker process of a fleet (`fleet.Fleet` starts one per job in flight): for each task it is sent, it asks
the tracker for a device of the key, uploads the libraries, times them there and sends the result back,
reporting after every RPC call so that the fleet can tell a working device from a hung one.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from ..runtimes.tvm import vm_session
from .timing import Stats, Timing, time_interleaved
from .tracker import Remote, reason, request_device

HEARTBEAT_S = 0.5  # a worker says it is alive at most this often while it works on a device


@dataclass(frozen=True)
class Task:
    """What a worker process is sent for one job."""

    remote: Remote
    libraries: tuple[Path, ...]
    x: np.ndarray
    threads: int
    timing: Timing
    canary: Path | None  # time this too, unless the device is in `calibrated`
    calibrated: frozenset[str]


def serve(fd: int) -> None:
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
            task: Task = conn.recv()
        except (EOFError, OSError):
            return
        message = _run(task, conn)
        # The session is released before the result goes out, so TVM closes its connection cleanly before the
        # fleet may end this process: a TVM rpc_server whose client vanishes mid-session stops serving for good.
        gc.collect()
        conn.send(message)


def _run(task: Task, conn: Connection) -> tuple:
    """Time one task on a device of the key; the message for the fleet: ('done', ...) or ('failed', ...)."""
    from tvm import rpc

    device, sess, step = None, None, "asking the tracker for a device"
    last = [time.monotonic()]

    def beat() -> None:
        if time.monotonic() - last[0] >= HEARTBEAT_S:
            conn.send(("alive",))
            last[0] = time.monotonic()

    try:
        url, port, matchkey = request_device(task.remote)
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
        return "failed", device, f"{device or task.remote.tracker}: {step}: {type(e).__name__}: {reason(e)}", \
            _alive(sess)


def _time(sess, task: Task, libraries: list[Path], prefix: str, beat) -> tuple[list[Stats], list[tuple[np.ndarray, ...]], str]:
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
    return [stats[str(i)] for i in range(len(sessions))], [s.outputs for s in sessions], sessions[0].version


def _alive(sess) -> bool:
    """Whether the RPC session still answers after an error (then the job, not the device, failed)."""
    if sess is None:
        return False
    try:
        sess.get_function("runtime.config_threadpool")
        return True
    except Exception:  # noqa: BLE001
        return False
