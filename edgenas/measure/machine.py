"""One local measurement at a time on this machine, and how busy the rest of the machine was meanwhile.

Two edgenas processes timing at once on the same cores each see the other's load and store latencies several
times too slow. `exclusive()` holds a machine-wide lock (a file in the system's temporary folder, locked with
flock, which the kernel releases when a process dies) for the duration of a timing; a second process waits and
says so. While it holds the lock it measures the CPU time every other process used (from /proc/stat, minus this
process's own): a measurement during which others kept more than `LOADED_CORES` cores busy is flagged
`under_load`, and the store does not use it as support until it is measured again.
"""
from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import host

LOCK = Path(tempfile.gettempdir()) / "edgenas-timing.lock"
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def loaded_cores() -> float:
    """How many cores other processes may keep busy before a measurement counts as taken under load."""
    return max(0.25, 0.1 * host.cores())


@dataclass
class Load:
    """Cores kept busy by other processes over a timing window (None where /proc is not there to tell)."""

    other_cores: float | None = None

    @property
    def under_load(self) -> bool:
        return self.other_cores is not None and self.other_cores > loaded_cores()


def _busy_ticks() -> tuple[int, int] | None:
    """(CPU ticks every process spent busy, ticks this process spent), from /proc; None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return user + nice + system + irq + softirq + steal, int(own[11]) + int(own[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def exclusive(say: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Iterator[Load]:
    """Hold the machine-wide timing lock (waiting, and saying so, while another process holds it) and measure
    the other processes' load until the block ends."""
    with open(LOCK, "a+") as f:
        try:
            os.chmod(LOCK, 0o666)  # every user's edgenas shares one lock
        except OSError:
            pass
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            say(f"waiting: another edgenas measurement ({holder}) is timing on this machine; timing two at once "
                f"would slow both")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
            load = Load()
            start, begin = _busy_ticks(), time.monotonic()
            yield load
            end, seconds = _busy_ticks(), time.monotonic() - begin
            if start and end and seconds > 0:
                other = (end[0] - start[0]) - (end[1] - start[1])
                load.other_cores = max(0.0, other / TICKS / seconds)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
