"""Ctrl-C that works: the command line stops within a moment, whatever the main thread is doing, and leaves
nothing half-written.

Python delivers SIGINT to the main thread only between bytecodes, so a long call into TVM (replaying tuned
schedules, compiling) used to finish first, and a KeyboardInterrupt raised inside one of MetaSchedule's Python
callbacks crashed the process (exit 139). `install()` adds a watcher thread that the signal wakes (through
`signal.set_wakeup_fd`; TVM releases the GIL while it works), which removes the folders registered with
`on_interrupt` and leaves at once with exit code 130; nothing is raised in the main thread. Inside `raising()`
(a fleet run, whose `finally` closes RPC sessions cleanly) the main thread gets its KeyboardInterrupt instead,
and the watcher only steps in if the process is still there `GRACE_S` later. Files that must stay valid are
written whole and renamed (artifacts, tuning progress) or are SQLite transactions (the store); a tuning
database's last record, cut in the middle of its line, is dropped when the database is next opened.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

EXIT_CODE = 130
GRACE_S = 1.5  # how long the main thread may take to leave by itself
MESSAGE = "interrupted; measurements and tuning records already stored are kept"
_undo: dict[int, Path] = {}  # handle -> a folder to remove on interrupt
_raising = [False]


def on_interrupt(folder: Path) -> int:
    """Remove `folder` if the user interrupts; returns a handle for `done`."""
    _undo[id(folder)] = folder
    return id(folder)


def done(handle: int) -> None:
    _undo.pop(handle, None)


@contextmanager
def raising() -> Iterator[None]:
    """A block that Ctrl-C ends with a KeyboardInterrupt in the main thread (its `finally` blocks run), within
    `GRACE_S`; it must not call into TVM code that calls back into Python."""
    _raising.append(True)
    try:
        yield
    finally:
        _raising.pop()


def leave() -> None:
    """Remove the registered folders, say so, and exit with 130 at once (no `finally` runs)."""
    for folder in list(_undo.values()):
        shutil.rmtree(folder, ignore_errors=True)
    print(MESSAGE, file=sys.stderr, flush=True)
    os._exit(EXIT_CODE)


def install() -> None:
    """Make SIGINT end the process within `GRACE_S`, with exit code 130. Only from the main thread, once."""
    if threading.current_thread() is not threading.main_thread() or getattr(install, "installed", False):
        return
    read, write = os.pipe()
    os.set_blocking(write, False)

    def handler(signum, frame):  # runs in the main thread, between bytecodes
        if _raising[-1]:
            raise KeyboardInterrupt

    def watch() -> None:
        while os.read(read, 1) != bytes([signal.SIGINT]):  # blocks until a signal arrives; SIGINT is ours
            pass
        if _raising[-1]:
            time.sleep(GRACE_S)  # the main thread raises and leaves by itself, unless TVM holds it
        leave()

    signal.signal(signal.SIGINT, handler)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    threading.Thread(target=watch, name="edgenas-interrupt", daemon=True).start()
    install.installed = True
