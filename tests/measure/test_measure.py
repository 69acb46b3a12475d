import time

import numpy as np
import pytest

from edgenas.compiler.export import export_onnx
from edgenas.errors import EdgenasError
from edgenas.measure.place import measure
from edgenas.measure.timing import Stats, Timing, time_session
from edgenas.runtimes import RUNTIMES

from ..conftest import ARCH

FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=5, max_repeats=20, max_seconds=3)


@pytest.fixture(scope="module")
def tiny(small, tmp_path_factory):
    return export_onnx(small.build(ARCH), small.input_shape, tmp_path_factory.mktemp("m") / "m.onnx")


def test_onnxruntime_is_timed_with_statistics(tiny):
    m = measure("onnxruntime", tiny.path, tiny.reference_input, threads=1, timing=FAST)
    s = m.stats
    assert m.threads == 1 and m.runtime == "onnxruntime"
    assert 0 < s.min_ms <= s.p50_ms <= s.p90_ms
    assert s.repeats >= FAST.min_repeats and s.number >= 1
    assert s.p50_ms * s.number >= FAST.min_repeat_ms * 0.5, "each repeat is calibrated to about min_repeat_ms"
    assert np.max(np.abs(m.outputs[0] - tiny.reference_outputs[0])) <= 1e-4


def test_steady_work_is_stable():
    def run(n):
        t0 = time.perf_counter()
        for _ in range(n):
            time.sleep(0.002)
        return (time.perf_counter() - t0) / n

    s = time_session(run, FAST)
    assert s.p50_ms == pytest.approx(2.0, rel=0.5)
    assert s.stable and s.repeats < FAST.max_repeats


def test_wide_spread_is_repeated_then_flagged():
    durations = iter([0.001, 0.004] * 1000)

    def run(n):
        t0 = time.perf_counter()
        time.sleep(next(durations) * n)
        return (time.perf_counter() - t0) / n

    s = time_session(run, FAST)
    assert not s.stable
    assert s.spread > FAST.max_spread
    assert s.repeats == FAST.max_repeats, "an unstable session is repeated up to the limit (its time limit is far)"


def test_stats_percentiles():
    s = Stats.of([1.0, 2.0, 3.0, 4.0, 100.0], number=1, max_spread=0.05)
    assert (s.min_ms, s.p50_ms) == (1.0, 3.0)
    assert s.p90_ms > 4.0 and not s.stable


def test_unknown_runtime_and_unloadable_library(tiny, tmp_path):
    assert {"tvm", "onnxruntime"} <= set(RUNTIMES)
    with pytest.raises(EdgenasError, match="no runtime 'tensorrt'"):
        measure("tensorrt", tiny.path, tiny.reference_input)
    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not a library")
    with pytest.raises(EdgenasError, match="TVM cannot load"):
        measure("tvm", bad, tiny.reference_input)


def test_timing_tvm_leaves_the_process_free_to_use_every_core(tiny, tmp_path):
    """TVM's thread pool must not pin the calling thread: runtimes timed after it would inherit one core."""
    import os

    from edgenas.compiler.compile import compile_onnx
    from edgenas.device.profile import PROFILES

    before = os.sched_getaffinity(0)
    lib = compile_onnx(tiny.path, PROFILES.get("host").resolved_target(), tmp_path / "m.so")
    m = measure("tvm", lib.path, tiny.reference_input, timing=FAST)
    assert os.sched_getaffinity(0) == before
    assert np.max(np.abs(m.outputs[0] - tiny.reference_outputs[0])) <= 1e-4


def test_measure_on_a_device_of_the_rpc_tracker(tiny, tmp_path, rpc_tracker):
    from edgenas.compiler.compile import compile_onnx
    from edgenas.device.profile import PROFILES
    from edgenas.measure.tracker import Remote

    lib = compile_onnx(tiny.path, PROFILES.get("host").resolved_target(), tmp_path / "m.so")
    m = measure("tvm", lib.path, tiny.reference_input, threads=1, timing=FAST,
                remote=Remote(rpc_tracker, "loopback"))
    assert m.stats.p50_ms > 0 and m.threads == 1
    assert np.max(np.abs(m.outputs[0] - tiny.reference_outputs[0])) <= 1e-4
    with pytest.raises(EdgenasError, match="no device is registered under key 'phones'.*keys: loopback"):
        measure("tvm", lib.path, tiny.reference_input, remote=Remote(rpc_tracker, "phones"))
    with pytest.raises(EdgenasError, match="onnxruntime is timed on this machine only"):
        measure("onnxruntime", tiny.path, tiny.reference_input, remote=Remote(rpc_tracker, "loopback"))


def test_a_tracker_that_is_down_is_a_clear_error(tiny):
    from edgenas.measure.loopback import free_port
    from edgenas.measure.tracker import Remote

    with pytest.raises(EdgenasError, match=r"cannot reach the RPC tracker at 127\.0\.0\.1:\d+ .*start it"):
        measure("tvm", tiny.path, tiny.reference_input, remote=Remote(f"127.0.0.1:{free_port()}", "loopback"))
