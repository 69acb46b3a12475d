"""Tuning: one database serves other architectures with no new trials, an interrupted run resumes, and the
compile report says which kernels were tuned. Real MetaSchedule tuning of the small NB201 network
(8 channels, 1 cell per stage), 2 trials per task, measured on this machine."""
import gzip
import json
import platform
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgenas.cli import cli
from edgenas.compiler.compile import HAND_SCHEDULED, compile_onnx
from edgenas.compiler.export import export_onnx
from edgenas.compiler.tune import FLOOR_TRIALS, Planned, budgeted_trials, randomize_batch_norms, tune
from edgenas.compiler.tuning_db import (
    SHIPPED_DATABASES,
    cpu_family,
    database_path,
    databases_for,
    export_database,
    open_database,
    open_fastest,
    workload_key,
)
from edgenas.device.profile import PROFILES
from edgenas.errors import EdgenasError
from edgenas.pipeline.compile import compile_artifact

from ..conftest import ARCH

# The same operation types as ARCH (3x3 convolutions, a pool, skips) in another wiring.
ARCH_B = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|"
# 1x1 convolutions, which neither of them has.
ARCH_1X1 = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
TRIALS = 2
SHIPPED_X86 = SHIPPED_DATABASES / "x86_64"


@pytest.fixture(scope="module")
def tuned_db(small, tmp_path_factory):
    """A database tuned for ARCH only."""
    db = tmp_path_factory.mktemp("tuning") / "db"
    report = tune("host", small, trials=TRIALS, db=db, archs=[ARCH])
    assert report.trials_run > 0 and not any(t.skipped for t in report.tasks)
    return db


def record_count(db) -> int:
    return len(open_database(db).get_all_tuning_records())


def compiled(small, arch, db, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    exported = export_onnx(randomize_batch_norms(small.build(arch)), small.input_shape, tmp_path / "m.onnx")
    return exported, compile_onnx(exported.path, PROFILES.get("host").resolved_target(), tmp_path / "m.so",
                                  tuning_db=db)


def test_database_serves_another_architecture_with_no_new_trials(small, tuned_db, tmp_path):
    import tvm
    from tvm import relax

    before = record_count(tuned_db)
    exported, lib = compiled(small, ARCH_B, tuned_db, tmp_path)
    assert lib.tuning_db == tuned_db and lib.tuned
    # Every convolution and pool is tuned; what may fall back is a small head kernel (the global mean) whose
    # record, tuned with other fused blocks, does not replay on this network's variant.
    assert not [k for k in lib.fallback if "conv" in k or "pool" in k], lib.fallback
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib.path)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(exported.reference_input)).numpy()
    scale = max(1.0, float(np.max(np.abs(exported.reference_outputs[0]))))
    assert np.max(np.abs(got - exported.reference_outputs[0])) <= 1e-4 * scale
    # Tuning for ARCH_B finds every one of its tasks already tuned: no trial runs, nothing is added.
    report = tune("host", small, trials=TRIALS, db=tuned_db, archs=[ARCH_B])
    assert report.trials_run == 0 and all(t.skipped for t in report.tasks)
    assert record_count(tuned_db) == before


@pytest.mark.slow  # tunes, is interrupted and tunes again: ~1 min
def test_interrupted_tuning_resumes_and_skips_tuned_tasks(small, tmp_path):
    db = tmp_path / "db"
    done = []

    def stop_after_three(message):
        if message.startswith("["):
            done.append(message.split(":")[0].split()[-1])  # "[####....] 3/19 fused_conv2d_add: ..."
            if len(done) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune("host", small, trials=TRIALS, db=db, archs=[ARCH], log=stop_after_three)
    kept = record_count(db)
    assert kept > 0
    resumed = tune("host", small, trials=TRIALS, db=db, archs=[ARCH])
    skipped = [t.name for t in resumed.tasks if t.skipped]
    assert skipped == done
    assert all(t.records_before >= 1 for t in resumed.tasks if t.skipped)
    assert resumed.trials_run > 0 and record_count(db) == kept + resumed.trials_run
    again = tune("host", small, trials=TRIALS, db=db, archs=[ARCH])
    assert again.trials_run == 0 and all(t.skipped for t in again.tasks)


@pytest.mark.slow  # tunes twice: ~40 s
def test_a_time_budget_leaves_no_task_untuned_and_a_rerun_tops_up(small, tmp_path):
    """Past the budget every task still gets FLOOR_TRIALS, heaviest first; the summary says so, and a run
    without a budget gives the floored tasks the rest of their trials."""
    db = tmp_path / "db"
    said = []
    short = tune("host", small, trials=FLOOR_TRIALS + 2, db=db, archs=[ARCH], budget_minutes=0.001, log=said.append)
    assert short.tasks and all(t.floored and t.trials_run <= FLOOR_TRIALS for t in short.tasks)
    assert all(t.best_us is not None for t in short.tasks), "every kernel has a schedule"
    work = [t.weight * t.work for t in short.tasks]
    assert work == sorted(work, reverse=True), "the most work first"
    assert "given fewer trials than wanted to keep within the budget" in short.summary()
    topped = tune("host", small, trials=FLOOR_TRIALS + 2, db=db, archs=[ARCH])
    # a task whose search space ran out before the floor has all it can get; the others get their 2 more
    assert {t.name for t in topped.tasks if t.skipped} == {t.name for t in short.tasks if t.trials_run < FLOOR_TRIALS}
    assert all(0 < t.trials_run <= 2 for t in topped.tasks if not t.skipped) and topped.trials_run > 0
    with pytest.raises(EdgenasError, match="--budget-minutes must be a positive"):
        tune("host", small, db=db, archs=[ARCH], budget_minutes=0)


def test_compile_reports_tuned_and_fallback_kernels(small, tuned_db, tmp_path):
    _, lib = compiled(small, ARCH_1X1, tuned_db, tmp_path)
    assert lib.tuned and lib.fallback  # its 1x1 convolutions were never tuned
    assert sorted(lib.tuned + lib.fallback) == sorted(lib.kernels)
    assert any("conv2d" in k for k in lib.fallback) and any("conv2d" in k for k in lib.tuned)


def test_artifact_report_names_the_database_and_its_kernels(tuned_db, tmp_path):
    # The full-size network shares the head's workloads with the small one, not its convolutions.
    art = compile_artifact("host", ARCH, tmp_path / "out", measure_latency=False, tuning_db=tuned_db)
    report = json.loads((tmp_path / "out" / "report.json").read_text())["compile"]
    assert report == art.report["compile"]
    assert report["tuning_db"] == str(tuned_db)
    assert sorted(report["tuned"] + report["fallback"]) == sorted(set(report["tuned"] + report["fallback"]))
    assert len(report["tuned"]) + len(report["fallback"]) == report["kernels"] and report["fallback"]


def test_default_database_is_per_target(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGENAS_TUNING_DIR", str(tmp_path))
    host = database_path(PROFILES.get("host").resolved_target())
    raspi = database_path(PROFILES.get("raspi4").resolved_target())
    assert host.parent == raspi.parent == tmp_path and host != raspi
    assert host.name.startswith("x86_64-") and raspi.name.startswith("aarch64-")


def test_shipped_databases_are_chosen_by_the_family_of_cpu(monkeypatch, tmp_path):
    """An AMD target reads the AMD-tuned shipped database first, an Intel one the Intel-tuned one, each then the
    other family's for the workloads its own lacks; a target of no known family (generic x86-64, another
    instruction set) gets none first."""
    from edgenas.device.target import ResolvedTarget

    monkeypatch.delenv("EDGENAS_NO_SHIPPED_TUNING")
    monkeypatch.setenv("EDGENAS_TUNING_DIR", str(tmp_path))
    x86 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "num-cores": 2}
    assert cpu_family({**x86, "mcpu": "znver4"}) == "amd" and cpu_family({**x86, "mcpu": "rocketlake"}) == "intel"
    assert cpu_family({**x86, "mcpu": "x86-64-v4"}) is None and cpu_family({"kind": "cuda"}) is None
    assert cpu_family({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}) is None
    families = sorted(p.name for p in SHIPPED_X86.iterdir() if p.is_dir())
    assert families == ["amd", "intel"]
    for mcpu, first in (("znver5", "amd"), ("sapphirerapids", "intel")):
        target = ResolvedTarget("x86_64", "x86_64", "cpu", {**x86, "mcpu": mcpu}, None)
        assert [p.name for p in databases_for(target)] == [first] + [f for f in families if f != first]
    for name in families:  # each holds only records measured on its family's CPUs
        text = gzip.decompress((SHIPPED_X86 / name / "database_tuning_record.json.gz").read_bytes()).decode()
        assert {cpu_family(json.loads(line)[1][2]) for line in text.splitlines()} == {name}


def test_an_export_for_one_family_keeps_only_its_records(tuned_db, tmp_path):
    """Run times from two families of CPU do not compare: an export for one keeps only records measured on it,
    and no workload left without a record."""
    here = cpu_family(PROFILES.get("host").resolved_target().tvm)
    other = {"amd": "intel", "intel": "amd"}.get(here)
    if other is None:
        pytest.skip("this machine's CPU is of no known family")
    assert export_database(tuned_db, tmp_path / "here", family=here) > 0
    assert export_database(tuned_db, tmp_path / "other", family=other) == 0
    assert (tmp_path / "other" / "database_workload.json").read_text() == ""


def test_tune_refuses_to_write_into_a_shipped_database():
    shipped = SHIPPED_X86 / "amd"
    before = sorted(p.name for p in shipped.iterdir())
    with pytest.raises(EdgenasError, match="shipped with edgenas"):
        tune("host", trials=1, db=shipped)
    assert sorted(p.name for p in shipped.iterdir()) == before, "nothing created there"


def test_tune_refuses_a_target_that_cannot_run_here():
    with pytest.raises(EdgenasError, match="run edgenas tune on the device"):
        tune("raspi4", trials=1)


def test_cli_tune_and_compile_errors_are_one_line(tmp_path, tuned_db):
    result = CliRunner().invoke(cli, ["tune", "--target", "raspi4", "--trials", "1"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "error:" in result.output
    missing = tmp_path / "nothing"
    result = CliRunner().invoke(cli, ["compile", "--arch", ARCH, "--no-measure", "-o", str(tmp_path / "o"),
                                      "--tuning-db", str(missing)])
    assert result.exit_code == 2 and "does not exist" in result.output and result.output.count("\n") == 1



@pytest.mark.slow  # compiles twice: ~20 s
def test_exported_database_keeps_each_workloads_fastest_records(small, tuned_db, tmp_path):
    source = open_database(tuned_db)
    copied = export_database(tuned_db, tmp_path / "shipped", top_k=1)
    exported = open_database(tmp_path / "shipped")
    records = exported.get_all_tuning_records()
    assert copied == len(records) > 0
    assert len({str(r.workload.mod) for r in records}) == len(records)  # one per workload
    for record in records:
        fastest = source.get_top_k(source.commit_workload(record.workload.mod), 1)[0]
        assert [float(s) for s in record.run_secs] == [float(s) for s in fastest.run_secs]
    # What compile loads is the same selection, in memory.
    fastest = open_fastest(tuned_db, top_k=1).get_all_tuning_records()
    assert sorted(float(r.run_secs[0]) for r in fastest) == sorted(float(r.run_secs[0]) for r in records)
    # It serves a compile as the full database does.
    _, full = compiled(small, ARCH_B, tuned_db, tmp_path / "a")
    _, small_db = compiled(small, ARCH_B, tmp_path / "shipped", tmp_path / "b")
    assert small_db.tuned == full.tuned
    with pytest.raises(EdgenasError, match="exists"):
        export_database(tuned_db, tmp_path / "shipped")


def test_a_budget_keeps_the_floors_of_the_tasks_still_to_come():
    def planned(work, have=0):
        return Planned(None, None, 1, work, work, 64, have, "", False)

    rest = [planned(4e6)] + [planned(1e4) for _ in range(12)]
    # 60 trials' time left: 48 of them are the 12 light tasks' floors, so the heavy task gets what remains
    assert budgeted_trials(rest, 60.0, 1.0) <= 60 - 12 * FLOOR_TRIALS
    assert budgeted_trials(rest, 40.0, 1.0) == FLOOR_TRIALS  # out of time: the floor, and the others theirs
    assert budgeted_trials(rest[:1], 60.0, 1.0) == 60  # alone, it has it all
    # a task that has its floor already reserves nothing
    assert budgeted_trials([planned(4e6)] + [planned(1e4, have=4) for _ in range(12)], 60.0, 1.0) == \
        int(60 * 2000 / (2000 + 12 * 100))  # its share of all 60, by the square roots of the work


def test_open_fastest_loads_only_the_workloads_asked_for(tuned_db):
    """What compile does: only the workloads of the network's kernels are loaded (their traces replay as they
    load), found by the key the database files them under."""
    everything = open_fastest(tuned_db, top_k=2).get_all_tuning_records()
    keys = sorted({workload_key(r.workload.mod) for r in everything})
    assert len(keys) > 2  # every record's workload has a key the database knows
    chosen = set(keys[::2])
    some = open_fastest(tuned_db, top_k=2, only=chosen)
    wanted = [r for r in everything if workload_key(r.workload.mod) in chosen]
    assert sorted(float(r.run_secs[0]) for r in some.get_all_tuning_records()) == \
        sorted(float(r.run_secs[0]) for r in wanted)
    assert all(some.has_workload(r.workload.mod) for r in wanted)
    assert not open_fastest(tuned_db, only=set()).get_all_tuning_records()


def test_a_compressed_database_beside_empty_plain_files_keeps_its_records(tuned_db, tmp_path):
    """MetaSchedule creates empty plain files in a directory it opens; a compressed (shipped) database that has
    them beside it is still read from its .gz files, not as an empty database."""
    shipped = tmp_path / "shipped"
    copied = export_database([tuned_db], shipped, top_k=2, compress=True)
    for name in ("database_workload.json", "database_tuning_record.json"):
        (shipped / name).touch()
    assert copied > 0 and len(open_fastest(shipped, top_k=2).get_all_tuning_records()) == copied


@pytest.mark.skipif(not (SHIPPED_X86 / "amd").is_dir(), reason="merges a shipped database")
def test_databases_merge_into_one_compressed_shipped_database(tuned_db, tmp_path):
    """How the shipped database gathers every space's records: the union of the workloads (here the small
    network's and the shipped full-size ones), each workload's fastest records, gzip-compressed, and read by
    compile as a plain database is."""
    shipped = tmp_path / "x86_64"
    copied = export_database([tuned_db, SHIPPED_X86 / "amd"], shipped, top_k=2, compress=True)
    assert sorted(p.name for p in shipped.iterdir()) == ["database_tuning_record.json.gz", "database_workload.json.gz"]
    database = open_fastest(shipped, top_k=2)
    merged = database.get_all_tuning_records()
    parts = [open_fastest(p, top_k=2).get_all_tuning_records() for p in (tuned_db, SHIPPED_X86 / "amd")]
    assert copied == len(merged) and max(map(len, parts)) < len(merged) <= sum(map(len, parts))
    # every workload of either is served (workloads equal by anchor block may become one), by its fastest records
    assert all(database.has_workload(r.workload.mod) for part in parts for r in part)
    times = {float(r.run_secs[0]) for part in parts for r in part}
    assert {float(r.run_secs[0]) for r in merged} <= times
    def mean(r):
        return sum(float(s) for s in r.run_secs) / len(r.run_secs)

    for record in parts[0]:  # 'fastest' is by the mean of a record's repeats, as MetaSchedule ranks them
        best = database.get_top_k(database.commit_workload(record.workload.mod), 1)[0]
        assert mean(best) <= mean(record)


@pytest.mark.skipif(not SHIPPED_X86.is_dir() or platform.machine() != "x86_64",
                    reason="the shipped database is for x86-64 CPUs")
def test_shipped_database_tunes_every_kernel_of_a_new_architecture(monkeypatch, tmp_path):
    """A new user (no database of their own) compiles an architecture outside the covering set with the
    database that ships with edgenas: every kernel tuned, none falls back."""
    from edgenas.spaces import get_space

    monkeypatch.delenv("EDGENAS_NO_SHIPPED_TUNING")
    monkeypatch.setenv("EDGENAS_TUNING_DIR", str(tmp_path / "empty"))
    space = get_space("nb201")
    assert ARCH_1X1 not in space.tuning_archs()
    exported = export_onnx(randomize_batch_norms(space.build(ARCH_1X1)), space.input_shape, tmp_path / "m.onnx")
    lib = compile_onnx(exported.path, PROFILES.get("host").resolved_target(), tmp_path / "m.so")
    assert lib.tuning_db == SHIPPED_X86 / cpu_family(PROFILES.get("host").resolved_target().tvm)
    assert lib.tuned and not lib.fallback, lib.fallback


@pytest.mark.slow  # compiles the full-size network: ~20 s
@pytest.mark.skipif(not SHIPPED_X86.is_dir() or platform.machine() != "x86_64",
                    reason="the shipped database is for x86-64 CPUs")
def test_a_partial_database_of_ones_own_falls_back_per_workload(monkeypatch, tuned_db, tmp_path):
    """A database of the user's own that lacks workloads (an interrupted tune, a small network's) leaves none
    untuned: each kernel it lacks takes the shipped database's schedule, and the report says where each came
    from."""
    from edgenas.spaces import get_space

    monkeypatch.delenv("EDGENAS_NO_SHIPPED_TUNING")
    space = get_space("nb201")
    exported = export_onnx(randomize_batch_norms(space.build(ARCH_1X1)), space.input_shape, tmp_path / "m.onnx")
    lib = compile_onnx(exported.path, PROFILES.get("host").resolved_target(), tmp_path / "m.so", tuning_db=tuned_db)
    origins = dict(lib.schedule_from)
    assert lib.tuning_db == tuned_db and not lib.fallback, lib.fallback
    shipped = {o for o in origins.values() if o not in (str(tuned_db), HAND_SCHEDULED)}
    assert {str(tuned_db), HAND_SCHEDULED} < set(origins.values()) and shipped and \
        all(Path(o).parent == SHIPPED_X86 for o in shipped), \
        "the user's first, then a shipped one; the pools and the classifier by hand"
    assert sorted(origins) == sorted(lib.tuned)


def test_a_candidate_build_that_runs_over_its_time_limit_fails_alone():
    """Candidates are built in a worker process under a time limit: one that runs over is a failed candidate
    (its worker is replaced), and the builder goes on with the next."""
    import tvm
    from tvm import te
    from tvm.s_tir.meta_schedule.builder import BuilderInput

    from edgenas.compiler.tune import WorkerBuilder

    a = te.placeholder((64,), name="a")
    b = te.compute((64,), lambda i: a[i] * 2.0, name="b")
    mod = tvm.IRModule({"main": te.create_prim_func([a, b])})
    target = tvm.target.Target("llvm")
    slow = WorkerBuilder(timeout=1e-3).build([BuilderInput(mod, target)])[0]
    assert slow.artifact_path is None and "ran over" in slow.error_msg
    builder = WorkerBuilder()  # its artifacts live as long as it does
    quick = builder.build([BuilderInput(mod, target)] * 2)
    assert all(r.error_msg is None for r in quick)
    lib = tvm.runtime.load_module(quick[1].artifact_path)
    x = tvm.runtime.tensor(np.arange(64, dtype="float32"))
    y = tvm.runtime.tensor(np.zeros(64, dtype="float32"))
    lib["main"](x, y)
    np.testing.assert_array_equal(y.numpy(), np.arange(64) * 2.0)


def test_a_user_model_is_tuned_and_a_second_one_tunes_only_its_new_workloads(tmp_path):
    """`tune --model`: the workloads of an ONNX file edgenas did not make; a second model that shares them (the
    same layers with another activation, fused into the convolution's epilogue) reuses every record."""
    from ..conftest import old_onnx

    db = tmp_path / "db"
    first = tune("host", trials=TRIALS, db=db, model=old_onnx(tmp_path / "a.onnx"), input_shape=(1, 3, 12, 16))
    assert first.trials_run > 0 and first.archs[0].startswith("onnx:") and "model" in first.summary()
    second = tune("host", trials=TRIALS, db=db, model=old_onnx(tmp_path / "b.onnx", op="Sigmoid"),
                  input_shape=(1, 3, 12, 16))
    assert all(t.skipped for t in second.tasks) and second.trials_run == 0, second.summary()
    result = CliRunner().invoke(cli, ["compile", "--model", str(tmp_path / "b.onnx"), "--input-shape", "1,3,12,16",
                                      "--tuning-db", str(db), "--no-measure", "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["compile"]["fallback"] == []
