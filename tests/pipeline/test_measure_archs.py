"""`edgenas measure` resumes without duplicating: a network whose measurement was cut short (one runtime stored,
not the other) gets only the missing runtime on the rerun."""
import numpy as np

from edgenas.measure.timing import Measurement, Stats, Timing
from edgenas.pipeline.measure_archs import measure_archs
from edgenas.spaces import configure
from edgenas.store import Store

from ..conftest import ARCH

FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=5, max_repeats=20, max_seconds=3)


def test_a_rerun_measures_only_the_missing_runtime(small, tmp_path):
    db = tmp_path / "db.sqlite"
    sp = configure(small, 1)
    arch = sp.canonical(ARCH)
    tvm_only = Measurement("tvm", "0.27.0", 2, Stats.of([1.0, 1.0, 1.0], number=3, max_spread=0.05),
                           np.zeros((1, 10), np.float32))
    with Store(db) as store:  # what an interrupted run left before the single-transaction recording
        store.add("host", sp.name, arch, sp.input_shape, {"kind": "llvm"}, tvm_only)
    run = measure_archs("host", [ARCH], space=small, db=db, runtimes=["tvm", "onnxruntime"], timing=FAST)
    assert [sorted(k for k in r if k != "arch") for r in run.rows] == [["onnxruntime"]]
    with Store(db) as store:
        assert sorted(r.runtime for r in store.records()) == ["onnxruntime", "tvm"]
    again = measure_archs("host", [ARCH], space=small, db=db, runtimes=["tvm", "onnxruntime"], timing=FAST)
    if run.rows[0]["onnxruntime"]["under_load"]:  # a busy machine (or a VM's stolen time): not support, so
        assert [sorted(k for k in r if k != "arch") for r in again.rows] == [["onnxruntime"]]  # measured again
    else:
        assert again.rows == [] and again.skipped == [arch]
        with Store(db) as store:
            assert len(list(store.records())) == 2, "a rerun adds no twin"


def test_the_table_marks_unstable_measurements():
    from edgenas.pipeline.measure_archs import MeasureRun

    steady = {"p50_ms": 1.0, "p90_ms": 1.01, "spread": 0.01, "stable": True, "device": "local", "store_id": 1}
    shaky = {**steady, "spread": 0.3, "stable": False, "store_id": 2}
    lines = MeasureRun([{"arch": ARCH, "tvm": steady, "onnxruntime": shaky}], [], {}, None, 2.0).table().splitlines()
    assert "UNSTABLE" not in lines[1] and lines[2].endswith("stored as #2  UNSTABLE: repeats spread too wide "
                                                            "(edgenas store remove --unstable drops it)")
    assert lines[-1].endswith("0 already stored; 1 unstable measurements (marked)")


def test_another_batch_is_another_measurement(small, tmp_path):
    """`--batch N`: the profile at N images per inference measures networks of that batch, stored under their
    own input shape; what the store holds at batch 1 is neither skipped for it nor mixed with it."""
    from edgenas.device.profile import PROFILES
    from edgenas.spaces import get_space

    db = tmp_path / "db.sqlite"
    host = PROFILES.get("host")
    assert host.at_batch(None) is host and host.at_batch(1) is host and host.at_batch(2).batch == 2
    measure_archs("host", [ARCH], space=small, db=db, runtimes=["onnxruntime"], timing=FAST)
    two = get_space("nb201", channels=8, cells_per_stage=1, batch=2)
    run = measure_archs(host.at_batch(2), [ARCH], space=two, db=db, runtimes=["tvm", "onnxruntime"], timing=FAST)
    assert run.skipped == [] and len(run.rows) == 1 and not run.failed
    with Store(db) as store:
        shapes = sorted((r.input_shape, r.runtime) for r in store.records())
        assert shapes == [((1, 3, 32, 32), "onnxruntime"), ((2, 3, 32, 32), "onnxruntime"), ((2, 3, 32, 32), "tvm")]
