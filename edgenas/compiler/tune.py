"""Tuning: MetaSchedule schedules for every operator workload of a search space, in one database per target.

All architectures of a space share a small set of operator workloads (for NB201, per stage: the 3x3 and
1x1 convolutions, the pooling and the elementwise kernels, plus the reduction blocks, stem and head).
`tune` exports the space's covering architectures (`SearchSpace.tuning_archs`), each freshly initialised
and with batch norms as training leaves them (their kernels differ in bias additions), lowers each exactly as
`compile_onnx` does, extracts the MetaSchedule tasks and deduplicates them by anchor block, so a
convolution tuned once serves every fused epilogue it appears with, in every architecture. Then it tunes
each task that the database does not yet hold enough records for, one task after another.

Candidates are built in one long-lived worker process, each under a time limit (LLVM can take minutes on a
pathological candidate: one of a 'mean' kernel ran for over 7 minutes; the worker is then killed and
restarted), and timed in this process with TVM's thread pool set up as `measure` sets it. (MetaSchedule's
default local builder starts fresh workers for every batch, which with their imports was most of the time.)
MetaSchedule appends every measured record to the JSON database when the task's batch is done, so an
interrupted run resumes from what is already there. A task whose workload the database holds is tuned on the
database's copy (equal by anchor block, its blocks may be named otherwise), or its records would not load.
Global average pools and batch-1 classifiers are not tuned: compile schedules them by hand (schedules.py).
Where the database lives and how compile reads it is `tuning_db.py`'s.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from ..console import progress_bar
from ..device.profile import Profile, as_profile
from ..device.target import ResolvedTarget
from ..errors import EdgenasError
from ..runtimes.tvm import configure_tvm_threads
from ..spaces import DEFAULT_SPACE, SearchSpace, configure
from .compile import blocks, lower
from .export import export_onnx
from .onnx_import import import_model
from .schedules import is_hand_scheduled
from .tuning_db import MODULE_EQUALITY, SHIPPED_DATABASES, database_path, open_database

LIGHT_WORK = 1e6  # tasks below this (small elementwise kernels, the head) get a quarter of the trials
FLOPS_PER_BYTE = 10  # a CPU of this class: ~200 GFLOP/s against ~20 GB/s, so a byte moved weighs 10 FLOPs
FLOOR_TRIALS = 4  # what each task gets at least under a time budget: no kernel is left to the default schedule
PRIOR_TRIAL_S = 0.7  # seconds per trial assumed under a budget until MEASURED_TRIALS have run (a candidate's build and
MEASURED_TRIALS = 32  # run; 0.6-0.9 s for ResNet-18's and MobileNetV2's tasks at 224x224 on 2 cores)
TRIALS_PER_ROUND = 32  # candidates measured between cost-model updates
BUILD_TIMEOUT_S = 60.0  # a candidate's LLVM build above this fails (most take well under a second)
PROGRESS = "edgenas_progress.json"  # per task: records wanted, and whether its search space ran out


class Planned(NamedTuple):
    """A task as the run plans it: its work, the trials it is wanted to have, the records it has."""

    task: object  # MetaSchedule's ExtractedTask
    mod: object  # the module tuned: the database's copy of the workload where it has one (see the plan)
    weight: int
    flops: float
    work: float
    wanted: int
    have: int
    key: str
    done: bool  # it has its records, or its search space ran out


@dataclass(frozen=True)
class TaskResult:
    name: str
    flops: float
    work: float  # FLOPs, or the bytes of its buffers x FLOPS_PER_BYTE where that is more (`_work`)
    weight: int  # calls of this workload over the covering architectures
    wanted: int  # trials this task is tuned to
    records_before: int
    trials_run: int
    best_us: float | None
    skipped: bool
    floored: bool = False  # given fewer trials than wanted (at least FLOOR_TRIALS), to keep within the time budget


@dataclass(frozen=True)
class TuneReport:
    database: Path
    target: str
    archs: tuple[str, ...]
    seconds: float
    tasks: list[TaskResult] = field(default_factory=list)
    networks: str = ""  # what was tuned, in words: N covering architectures of a space, or a user's model

    @property
    def trials_run(self) -> int:
        return sum(t.trials_run for t in self.tasks)

    def as_dict(self) -> dict:
        return {"database": str(self.database), "target": self.target, "archs": self.archs,
                "seconds": round(self.seconds, 1), "trials_run": self.trials_run,
                "tasks": [t.__dict__ for t in self.tasks]}

    def summary(self) -> str:
        """What `edgenas tune` prints: tasks tuned, the sum of the best kernel times, the database."""
        skipped = sum(t.skipped for t in self.tasks)
        floored = sum(t.floored for t in self.tasks)
        total = sum(t.best_us * t.weight for t in self.tasks if t.best_us is not None)
        return "\n".join([
            f"tuned      {len(self.tasks) - skipped} tasks ({self.trials_run} trials) in {self.seconds:.0f} s; "
            f"{skipped} already tuned" + (f"; {floored} given fewer trials than wanted to keep within the budget "
                                          f"(a rerun tops them up)" if floored else ""),
            f"kernels    sum of best kernel times over the {self.networks or f'{len(self.archs)} networks'}: "
            f"{total / 1e3:.3f} ms",
            f"database   {self.database}"])


def tune(profile: str | Profile, space: str | SearchSpace = DEFAULT_SPACE, trials: int = 64,
         db: str | Path | None = None, archs: list[str] | None = None, budget_minutes: float | None = None,
         log: Callable[[str], None] = lambda _: None, model: str | Path | None = None,
         input_shape: tuple[int, ...] | None = None) -> TuneReport:
    """`edgenas tune`: tune the workloads of `space`'s covering architectures (or of `archs`, or of the user's
    `model`: an ONNX file or a PyTorch factory, with `input_shape` as compile takes them) for the
    profile's target, `trials` candidates per task (a quarter for light tasks), into the database `db`
    (default: the target's), the tasks with the most work (calls x `_work`) first. Tasks that already have their
    records are skipped. With `budget_minutes`, each task gets its share of the trials that fit in the time left
    (`budgeted_trials`: by the square root of its work, at least FLOOR_TRIALS, at most `trials`): the run ends near the
    budget with every task tuned, and a rerun tops the short ones up."""
    from tvm.s_tir import meta_schedule as ms

    if trials < 1:
        raise EdgenasError(f"--trials must be at least 1, got {trials}")
    if budget_minutes is not None and not budget_minutes > 0:
        raise EdgenasError(f"--budget-minutes must be a positive number of minutes, got {budget_minutes}")
    profile = as_profile(profile)
    target = profile.resolved_target()
    if not target.runs_here or target.device != "cpu":
        raise EdgenasError(f"profile '{profile.name}' builds {target.machine}/{target.device} code; tuning times "
                           f"candidates on this machine's CPU, so run edgenas tune on the device itself")
    path = Path(db) if db else database_path(target)
    if path.resolve().is_relative_to(SHIPPED_DATABASES.resolve()):  # its plain JSON files would hide the .gz ones
        raise EdgenasError(f"--db {path} is a database shipped with edgenas, which tuning must not write to; pass "
                           f"another directory, or leave --db out to tune into the target's own")
    database = open_database(path)
    tvm_target = target.tvm_target()
    start = time.perf_counter()

    # 1. The union of the networks' tasks, deduplicated as the database matches them.
    seen = ms.database.MemoryDatabase(module_equality=MODULE_EQUALITY)
    tasks: list = []
    weights: list[int] = []
    with tempfile.TemporaryDirectory(prefix="edgenas-tune-") as tmp:
        if model is not None:
            imported = import_model(model, Path(tmp) / "model.onnx", input_shape)[0]
            archs, what, files = [imported.arch], f"model {model}", [Path(tmp) / "model.onnx"]
        else:
            sp = configure(space, profile.batch)
            archs = [sp.canonical(a) for a in (archs or sp.tuning_archs())]
            what, files = f"{len(archs)} covering architectures of {sp.name}", _exported(sp, archs, Path(tmp))
        log(f"extracting the tuning tasks of {what} for {target.name} (lowered as compile does)")
        for onnx_path in files:
            for task in ms.relax_integration.extract_tasks(lower(onnx_path, target), tvm_target,
                                                           module_equality=MODULE_EQUALITY):
                mod = task.dispatched[0]
                if seen.has_workload(mod):
                    j = next(j for j, t in enumerate(tasks) if _same(t.dispatched[0], mod))
                    weights[j] += task.weight
                    if _block_count(mod) < _block_count(tasks[j].dispatched[0]):
                        tasks[j] = task  # tune the plainest variant: its trace replays on the richer ones
                    continue
                seen.commit_workload(mod)
                tasks.append(task)
                weights.append(task.weight)
    log(f"{len(tasks)} distinct tasks in {what}; database {path}")

    # 2. Tune each task that is short of records, one after another.
    from tvm.s_tir.analysis import estimate_tir_flops

    progress_file = path / PROGRESS
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {}
    plan = []
    by_hand = [is_hand_scheduled(task.dispatched[0]["main"]) for task in tasks]
    if any(by_hand):
        log(f"{sum(by_hand)} tasks scheduled by hand (compiler/schedules.py: global pools, batch-1 classifiers), "
            f"not tuned")
    for task, weight, hand in zip(tasks, weights, by_hand):
        if hand:
            continue
        mod = task.dispatched[0]
        if database.has_workload(mod):  # equal by anchor block, but its other blocks may be named otherwise
            mod = database.commit_workload(mod).mod  # there: a trace must replay on the module stored with it
        flops = float(estimate_tir_flops(mod))
        work = _work(mod, flops)
        wanted = trials if work >= LIGHT_WORK else max(1, min(trials, max(8, trials // 4)))
        have = _records(database, mod)
        key = _key(mod)
        exhausted = progress.get(key, {}).get("exhausted", False)
        plan.append(Planned(task, mod, weight, flops, work, wanted, have, key, have >= wanted or exhausted))
    plan.sort(key=lambda p: -p.weight * p.work)  # the most work first: a budget then falls short on light tasks
    to_run = sum(p.wanted - p.have for p in plan if not p.done)
    log(f"{sum(p.done for p in plan)} tasks already tuned; {to_run} trials to run at most")

    _configure_threads(target)
    _register_cpu_intrinsics(target)
    builder, runner = WorkerBuilder(), InProcessRunner()
    cost_model = ms.cost_model.XGBModel(num_tuning_cores=max(1, target.tvm.get("num-cores") or 1))
    logger = _file_logger(path / "logs" / "tune.log")
    results: list[TaskResult] = []
    ran = 0
    tuned_seconds = 0.0
    for n, (task, mod, weight, flops, work, wanted, have, key, done) in enumerate(plan, start=1):
        if done:
            results.append(TaskResult(task.task_name, flops, work, weight, wanted, have, 0, _best_us(database, mod),
                                      True))
            log(f"{progress_bar(n, len(plan))} {task.task_name}: skipped ({have} records)")
            continue
        t0 = time.perf_counter()
        budget = wanted - have
        if budget_minutes is not None:
            per_trial = tuned_seconds / ran if ran >= MEASURED_TRIALS else PRIOR_TRIAL_S
            rest = [p for p in plan[n - 1:] if not p.done]
            budget = budgeted_trials(rest, 60 * budget_minutes - (t0 - start), per_trial)
        floored = budget < wanted - have
        if budget == 0:  # under the budget, a task that has its floor already waits for a rerun
            results.append(TaskResult(task.task_name, flops, work, weight, wanted, have, 0, _best_us(database, mod),
                                      False, True))
            log(f"{progress_bar(n, len(plan))} {task.task_name}: left at {have} records (budget)")
            continue
        per_round = min(TRIALS_PER_ROUND, budget)
        # The evolved population: 8 candidates per measured one (MetaSchedule's default, 512, costs more
        # search time per round than measuring 32 candidates here).
        search = ms.search_strategy.EvolutionarySearch(population_size=min(256, max(32, 8 * per_round)))
        context = ms.TuneContext(mod=mod, target=tvm_target, space_generator="post-order-apply",
                                 search_strategy=search,
                                 task_name=task.task_name, logger=logger, rand_state=n,
                                 num_threads=target.tvm.get("num-cores") or "physical").clone()
        ms.tune_tasks(tasks=[context], task_weights=[1.0], work_dir=str(path), max_trials_global=budget,
                      max_trials_per_task=budget, num_trials_per_iter=per_round,
                      builder=builder, runner=runner, database=database, cost_model=cost_model,
                      measure_callbacks=[ms.measure_callback.AddToDatabase(), ms.measure_callback.UpdateCostModel()],
                      task_scheduler="round-robin", module_equality=MODULE_EQUALITY)
        now = _records(database, mod)
        run = now - have
        progress[key] = {"name": task.task_name, "records": now, "wanted": wanted, "exhausted": run < budget}
        partial = progress_file.with_suffix(".partial")  # whole or not at all: Ctrl-C may come at any moment
        partial.write_text(json.dumps(progress, indent=1) + "\n")
        os.replace(partial, progress_file)
        ran += run
        to_run -= wanted - have
        tuned_seconds += time.perf_counter() - t0
        best = _best_us(database, mod)
        left = tuned_seconds / max(ran, 1) * to_run
        if budget_minutes is not None:
            left = min(left, max(0.0, 60 * budget_minutes - (time.perf_counter() - start)))
        log(f"{progress_bar(n, len(plan))} {task.task_name}: {run} trials, best {best:.1f} us "
            f"({flops / 1e6:.2f} MFLOP x{weight}); {time.perf_counter() - start:.0f} s so far, ~{left:.0f} s left"
            if best is not None else f"{progress_bar(n, len(plan))} {task.task_name}: {run} trials, no valid candidate")
        results.append(TaskResult(task.task_name, flops, work, weight, wanted, have, run, best, False, floored))
    return TuneReport(path, target.name, tuple(archs), time.perf_counter() - start, results, what)


def budgeted_trials(rest: list[Planned], seconds: float, per_trial: float) -> int:
    """The trials the first of `rest` (the tasks still to tune, this one first) gets of the `seconds` left: its
    share of the trials that fit, in proportion to the square root of its work (calls x `_work`) among theirs;
    at least its FLOOR_TRIALS, at most what it wants. (Tasks heaviest first, each given all it wanted until the
    budget neared, gave MobileNetV2's first ten tasks 128 trials and the other 36 four, some of them 2-7 ms
    kernels.) The floors of the tasks after it are kept out of the seconds it shares, so that the run ends within
    the budget (a 45-minute effnet run that spent them last ran 43 s over: 12 tasks at their floor after the
    time was up). Re-planned before every task, with the seconds per trial measured so far."""
    shares = [math.sqrt(p.weight * p.work) for p in rest]
    floors = sum(max(0, min(p.wanted, FLOOR_TRIALS) - p.have) for p in rest[1:])
    fits = max(0.0, seconds - floors * per_trial) / per_trial
    first = rest[0]
    return max(0, min(first.wanted - first.have, max(FLOOR_TRIALS - first.have, int(fits * shares[0] / sum(shares)))))


def _exported(sp: SearchSpace, archs: list[str], tmp: Path) -> Iterator[Path]:
    """Each architecture exported twice, freshly initialised and with batch norms as training leaves them (their
    kernels differ in bias additions)."""
    for i, (arch, trained) in enumerate(itertools.product(archs, (False, True))):
        model = randomize_batch_norms(sp.build(arch)) if trained else sp.build(arch)
        yield export_onnx(model, sp.input_shape, tmp / f"{i}.onnx").path


def randomize_batch_norms(model, seed: int = 0):
    """`model` with batch norms as training leaves them (nonzero shifts, scales other than 1). A freshly built
    network's batch norms fold into convolutions without a bias, which the exporter then drops, and leave
    its head's batch norm trivial; a trained one compiles to kernels with those additions, so both are tuned."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


def _same(a, b) -> bool:
    from tvm.s_tir import meta_schedule as ms

    probe = ms.database.MemoryDatabase(module_equality=MODULE_EQUALITY)
    probe.commit_workload(a)
    return probe.has_workload(b)


def _work(mod, flops: float) -> float:
    """A task's cost in FLOPs, or in the bytes its buffers hold (each read or written once) x FLOPS_PER_BYTE where
    that is more: a global average pool has few FLOPs and moves megabytes."""
    import tvm

    nbytes = 0
    for buffer in mod["main"].params:  # the kernel's buffers (TVM 0.27: a parameter is its buffer)
        elements = 1
        for extent in buffer.shape:
            elements *= int(extent)
        nbytes += elements * tvm.runtime.DataType(str(buffer.dtype)).bits // 8
    return max(flops, FLOPS_PER_BYTE * nbytes)


def _block_count(mod) -> int:
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    return len(list(blocks(sch, sch.get_sblock("root"))))


def _key(mod) -> str:
    import tvm_ffi

    return f"{tvm_ffi.structural_hash(mod) & 0xFFFFFFFFFFFFFFFF:016x}"


def _records(database, mod) -> int:
    if not database.has_workload(mod):
        return 0
    return len(database.get_top_k(database.commit_workload(mod), 1 << 30))


def _best_us(database, mod) -> float | None:
    if not database.has_workload(mod):
        return None
    top = database.get_top_k(database.commit_workload(mod), 1)
    return float(sum(top[0].run_secs) / len(top[0].run_secs)) * 1e6 if top else None


def _configure_threads(target: ResolvedTarget) -> None:
    configure_tvm_threads(target.tvm.get("num-cores") or os.cpu_count() or 1)


def _register_cpu_intrinsics(target: ResolvedTarget) -> None:
    """MetaSchedule's TuneContext imports tvm.s_tir.tensor_intrin, which parses the tensor intrinsics of
    every backend (23 s here, CUDA's most). Tuning for this CPU needs only its own: register those and
    stand in for the package, whose other submodules stay importable on demand."""
    import importlib
    import importlib.util
    import sys
    import types

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    package = types.ModuleType(name, "tensor intrinsics of this CPU only (see edgenas.tune)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    sys.modules[name] = package
    importlib.import_module(f"{name}.{'arm_cpu' if target.machine == 'aarch64' else 'x86'}")


def _file_logger(path: Path) -> logging.Logger:
    """MetaSchedule's per-task log, written to the database's logs/ directory instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("edgenas.tune.metaschedule")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in logger.handlers):
        for h in list(logger.handlers):
            logger.removeHandler(h)
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
        logger.addHandler(handler)
    return logger


# --- worker-process builder, in-process runner ----------------------------------------------------------
def _build_candidate(mod, target, directory: str) -> str:
    """In the builder's worker: compile one candidate with LLVM into a shared library under `directory`."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    fd, path = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    tvm_build(mod, target=target).export_library(path)
    return path


def _derived(cls):
    from tvm.ir.utils import derived_object

    return derived_object(cls)


def _builder_class():
    from tvm.s_tir import meta_schedule as ms
    from tvm.support.popen_pool import PopenWorker

    class WorkerBuilder(ms.builder.PyBuilder):
        """Builds each candidate in one long-lived worker process, at most `timeout` seconds each; a candidate
        that runs over fails, and the worker is killed and started again. (Unlike MetaSchedule's default
        builder it neither starts workers per batch nor imports tvm.s_tir.tensor_intrin, 23 s here, which
        only int8 tensorisation needs.)"""

        def __init__(self, timeout: float):
            super().__init__()
            self.timeout = timeout
            self.worker = PopenWorker()
            self.directory = tempfile.TemporaryDirectory(prefix="edgenas-tune-")

        def build(self, build_inputs):
            from tvm.s_tir.meta_schedule.builder import BuilderResult

            results = []
            for inp in build_inputs:
                try:
                    self.worker.send(_build_candidate, (inp.mod, inp.target, self.directory.name),
                                     timeout=self.timeout)
                    results.append(BuilderResult(self.worker.recv(), None))
                except TimeoutError:
                    results.append(BuilderResult(None, f"build ran over {self.timeout:.0f} s"))
                except Exception as e:  # noqa: BLE001  (a failed candidate is a result, not an error)
                    results.append(BuilderResult(None, f"{type(e).__name__}: {e}"))
            return results

    return _derived(WorkerBuilder)


def _runner_class():
    from tvm.s_tir import meta_schedule as ms

    class InProcessRunner(ms.runner.PyRunner):
        """Times each built candidate in this process: 3 repeats of at least 10 ms, random inputs."""

        def run(self, runner_inputs):
            import tvm
            from tvm.s_tir.meta_schedule.runner import EvaluatorConfig
            from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture
            from tvm.s_tir.meta_schedule.runner.utils import (
                alloc_argument_common,
                run_evaluator_common,
            )

            fill = tvm.get_global_func("tvm.contrib.random.random_fill_for_measure", allow_missing=True)
            config = EvaluatorConfig(number=1, repeat=3, min_repeat_ms=10)
            futures = []
            for inp in runner_inputs:
                try:
                    module = tvm.runtime.load_module(str(inp.artifact_path))
                    os.unlink(str(inp.artifact_path))  # the loaded library stays mapped
                    dev = tvm.device(str(inp.device_type))
                    args = alloc_argument_common(fill, dev, [a.as_json() for a in inp.args_info], 1)
                    futures.append(LocalRunnerFuture(res=run_evaluator_common(module, dev, config, args)))
                except Exception as e:  # noqa: BLE001
                    futures.append(LocalRunnerFuture(error_message=f"{type(e).__name__}: {e}"))
            return futures

    return _derived(InProcessRunner)


def WorkerBuilder(timeout: float = BUILD_TIMEOUT_S):  # noqa: N802  (built lazily: importing edgenas imports no TVM)
    return _builder_class()(timeout)


def InProcessRunner():  # noqa: N802
    return _runner_class()()
