"""One local measurement at a time on this machine (a second one waits, and says so), and the load other
processes put on it meanwhile, measured for real: a busy process beside a timing flags it."""
import subprocess
import sys
import time

from edgenas.measure.machine import exclusive

HOLD = "from edgenas.measure.machine import exclusive; import time\nwith exclusive():\n" \
       "    print('held', flush=True)\n    time.sleep(1.5)\n"
SPIN = "import time\nend = time.time() + 30\nwhile time.time() < end:\n    pass\n"


def test_a_second_timing_waits_for_the_first_and_says_so():
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = []
        start = time.monotonic()
        with exclusive(say=said.append):
            waited = time.monotonic() - start
        assert waited > 0.5 and len(said) == 1, said
        assert said[0].startswith(f"waiting: another edgenas measurement (pid {holder.pid}) is timing on this machine")
    finally:
        holder.wait(timeout=30)
    said = []
    with exclusive(say=said.append):  # nobody holds it now: no wait, nothing said
        pass
    assert said == []


def test_other_processes_load_flags_a_timing():
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
    try:
        time.sleep(0.3)
        with exclusive() as load:
            time.sleep(1.5)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert load.other_cores > 0.5 and load.under_load, load
