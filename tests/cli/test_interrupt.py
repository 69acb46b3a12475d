"""Ctrl-C on real commands, at the phases where it used to be ignored or crash: the process leaves within a
moment with exit code 130 and every file is whole (no artifact half-written, the tuning database readable)."""
import json
import signal
import subprocess
import sys
import time

import pytest

from edgenas.compiler.tune import PROGRESS
from edgenas.compiler.tuning_db import open_database
from edgenas.store import Store

from ..conftest import ARCH

# `edgenas tune` of one small test network (the CLI tunes a whole space: minutes of task extraction first), with
# the command line's own Ctrl-C handling installed
TUNE_SMALL = ("import sys\nfrom edgenas import interrupt\nfrom edgenas.compiler.tune import tune\n"
              "from edgenas.spaces import get_space\ninterrupt.install()\n"
              "tune('host', get_space('nb201', channels=8, cells_per_stage=1), trials=64, db=sys.argv[1], "
              "archs=[sys.argv[2]], log=lambda m: print(m, file=sys.stderr, flush=True))\n")


def interrupted(args: list[str], marker: str, wait: float = 0.0) -> tuple[int, float, str]:
    """Run `edgenas ARGS` (or a Python script: args starting with -c), send SIGINT `wait` seconds after `marker`
    appears on its stderr; return its exit code, the seconds it took to leave, and its stderr."""
    command = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "edgenas", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            break
    else:
        raise AssertionError(f"'{marker}' never appeared: {''.join(seen)}")
    time.sleep(wait)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    return code, time.monotonic() - sent, "".join(seen) + process.stderr.read()


def test_ctrl_c_while_tvm_compiles(tmp_path):
    out = tmp_path / "out"
    code, took, err = interrupted(["compile", "-t", "host", "-a", ARCH, "-o", str(out), "--no-measure"],
                                  "compile: TVM", wait=1.0)
    assert code == 130 and took < 3, (code, took, err)
    assert err.rstrip().endswith("interrupted; measurements and tuning records already stored are kept")
    assert not out.exists() and list(tmp_path.iterdir()) == [], "no artifact and no staging folder left"


@pytest.mark.slow  # extracts and tunes a task before the signal: ~20 s
def test_ctrl_c_while_tuning(tmp_path):
    db = tmp_path / "db"
    code, took, err = interrupted(["-c", TUNE_SMALL, str(db), ARCH], "trials to run at most", wait=4.0)
    assert code == 130 and took < 3, (code, took, err)  # it was a segfault (139) inside MetaSchedule
    open_database(db)  # whole records only
    if (db / PROGRESS).exists():
        json.loads((db / PROGRESS).read_text())


def test_ctrl_c_during_the_first_measurement(tmp_path):
    db = tmp_path / "db.sqlite"
    code, took, err = interrupted(["measure", "-t", "host", "-a", ARCH, "--db", str(db)], "1 to measure", wait=3.0)
    assert code == 130 and took < 3, (code, took, err)
    with Store(db) as store:  # nothing half-recorded: a network's runtimes are one transaction
        assert len({r.runtime for r in store.records()}) in (0, 2)
