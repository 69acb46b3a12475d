"""Timing a model on a runtime: warm-up, calibrated batches, repeats until the spread is small.

Runtimes are registered by name (`tvm` for a compiled library, `onnxruntime` for an ONNX file, `litert` for a
.tflite file with the [mobile] extra); each turns a model file into a `Session` whose `run(n)` returns the mean
seconds of n back-to-back inferences, timed inside the runtime where it can. `measure` is the one entry point:
it pins the thread count, checks
the output, and returns statistics over the repeats, flagged unstable when their spread stays wide.
With a `Remote`, the `tvm` runtime is timed on a device that TVM's RPC tracker assigns for the key
(`fleet.time_remote`, which survives a device that hangs or disconnects).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import host
from .errors import EdgenasError


@dataclass(frozen=True)
class Session:
    run: Callable[[int], float]  # n -> mean seconds per inference over n back-to-back runs
    output: np.ndarray  # the output for the measured input
    version: str


@dataclass(frozen=True)
class Remote:
    """A device reached through TVM's RPC tracker: the tracker's HOST:PORT and the key the device serves."""

    tracker: str
    key: str
    device: str = "cpu"  # cpu or cuda, on the remote side
    timeout_s: float = 600.0  # the longest one session on a device may last (the server ends it then)
    call_timeout_s: float = 60.0  # the longest one RPC call may take before the device counts as hung
    cpus: tuple[int, ...] = ()  # the device's cores its threads share; () = TVM's big cores first (phones)


RUNTIMES: dict[str, Callable[[Path, np.ndarray, int], Session]] = {}


def register_runtime(name: str):
    def wrap(fn):
        RUNTIMES[name] = fn
        return fn
    return wrap


@dataclass(frozen=True)
class Timing:
    """How long to time: warm-up, the minimum length of one repeat, and when to stop repeating."""

    warmup_s: float = 0.2
    min_repeat_ms: float = 20.0
    min_repeats: int = 10
    max_repeats: int = 60
    max_seconds: float = 10.0
    max_spread: float = 0.05  # interquartile range / median of the repeats counted as stable


@dataclass(frozen=True)
class Stats:
    p50_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float
    spread: float
    repeats: int
    number: int  # inferences per repeat
    stable: bool
    samples_ms: tuple[float, ...] = field(default=(), repr=False)  # each repeat's mean, in the order taken

    @classmethod
    def of(cls, samples_ms: list[float], number: int, max_spread: float) -> "Stats":
        a = np.asarray(samples_ms)
        p25, p50, p75, p90 = np.percentile(a, [25, 50, 75, 90])
        spread = float((p75 - p25) / p50) if p50 > 0 else 0.0
        return cls(float(p50), float(p90), float(a.min()), float(a.mean()), float(a.std()), spread, len(a), number,
                   spread <= max_spread, tuple(float(v) for v in a))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of the repeats, in milliseconds."""
        return float(np.percentile(self.samples_ms, q))

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "samples_ms"}


@dataclass(frozen=True)
class Measurement:
    runtime: str
    runtime_version: str
    threads: int
    stats: Stats
    output: np.ndarray
    device: str = "local"  # 'local', or the HOST:PORT of the RPC server that timed it


def measure(runtime: str, model_path: str | Path, x: np.ndarray, threads: int | None = None,
            timing: Timing = Timing(), remote: Remote | None = None) -> Measurement:
    """Time `model_path` on `runtime` for input `x` with `threads` threads (default: all usable cores here),
    on this machine or, given `remote`, on a device of the RPC tracker."""
    if runtime not in RUNTIMES:
        raise EdgenasError(f"no runtime '{runtime}'; known: {', '.join(RUNTIMES)}")
    threads = threads or host.cores()
    if remote:
        if runtime != "tvm":
            raise EdgenasError(f"{runtime} is timed on this machine only; measure the tvm runtime on remote devices")
        from .fleet import time_remote

        return time_remote(remote, [Path(model_path)], x, threads, timing)[0]
    session = RUNTIMES[runtime](Path(model_path), x, threads)
    return Measurement(runtime, session.version, threads, time_session(session.run, timing), session.output)


# Idle time between two sessions' repeats, longer than any thread pool's spin-wait: measured here with TVM and
# onnxruntime interleaved, 50 ms still left onnxruntime's repeats 16% apart (IQR/median), 200 ms 1%.
HANDOVER_S = 0.2


def time_session(run: Callable[[int], float], timing: Timing) -> Stats:
    return time_interleaved({"": run}, timing)[""]


def time_interleaved(runs: dict[str, Callable[[int], float]], timing: Timing) -> dict[str, Stats]:
    """Time several sessions on the same machine fairly: each is warmed up and calibrated (inferences per
    repeat so one repeat lasts `min_repeat_ms`), then their repeats are taken in turn, round after round, so
    a slow phase of the machine falls on all of them alike. Rounds continue until every session is stable
    (or the time or repeat limit is reached). Between two sessions' repeats the machine is left idle for
    `HANDOVER_S`: thread pools (TVM's, onnxruntime's) keep their workers spinning for milliseconds after a
    call, and those workers would otherwise take the cores of the next session's first inferences."""
    numbers = {}
    for name, run in runs.items():
        start = time.perf_counter()
        warmup = [run(1)]
        while time.perf_counter() - start < timing.warmup_s:
            warmup.append(run(1))
        once = float(np.median(warmup[len(warmup) // 2:]))  # the later, warm half
        numbers[name] = max(1, math.ceil(timing.min_repeat_ms / 1e3 / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    begin = time.perf_counter()
    for repeat in range(1, timing.max_repeats + 1):
        for name, run in runs.items():
            if len(runs) > 1:
                time.sleep(HANDOVER_S)
            samples[name].append(run(numbers[name]) * 1e3)
        if repeat >= timing.min_repeats and (time.perf_counter() - begin > timing.max_seconds * len(runs) or all(
                Stats.of(samples[n], numbers[n], timing.max_spread).stable for n in runs)):
            break
    return {name: Stats.of(samples[name], numbers[name], timing.max_spread) for name in runs}


@register_runtime("tvm")
def tvm_session(path: Path, x: np.ndarray, threads: int) -> Session:
    import tvm

    configure_tvm_threads(threads)
    try:
        lib = tvm.runtime.load_module(str(path))
    except Exception as e:  # noqa: BLE001  (TVM raises its own error types for unloadable files)
        raise EdgenasError(f"TVM cannot load {path}: {str(e).splitlines()[0]}; was it built for this "
                           f"machine ({host.machine()})?") from None
    return vm_session(lib, tvm.cpu(), x)


def vm_session(lib, dev, x: np.ndarray) -> Session:
    """A session of the Relax VM in `lib` on `dev` (here, or a device of an RPC session) for input `x`."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(lib, dev)
    arg = tvm.runtime.tensor(x, dev)
    output = vm["main"](arg).numpy()
    evaluators: dict[int, Callable] = {}

    def run(n: int) -> float:
        if n not in evaluators:
            evaluators[n] = vm.time_evaluator("main", dev, number=n, repeat=1)
        return float(evaluators[n](arg).mean)

    return Session(run, output, tvm.__version__)


def configure_tvm_threads(threads: int) -> None:
    """Give TVM's thread pool in this process `threads` threads. Mode -3: every pool thread may run on any
    allowed core. The default mode pins the calling thread to one core, which then also confines every
    runtime measured after it in this process."""
    import tvm

    allowed = [str(c) for c in sorted(os.sched_getaffinity(0))]
    tvm.get_global_func("runtime.config_threadpool")(-3, threads, allowed)


@register_runtime("litert")
def litert_session(path: Path, x: np.ndarray, threads: int) -> Session:
    """A .tflite model on the LiteRT interpreter (the [mobile] extra) with `threads` threads and the XNNPACK
    delegate it applies by default; the version says whether the graph was delegated (a DELEGATE node)."""
    from .mobile import captured_output, interpreter

    interpreter_class = interpreter()
    try:
        with captured_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            it = interpreter_class(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgenasError(f"LiteRT cannot load {path}: {str(e).strip().splitlines()[0]}; is it a .tflite "
                           f"model?") from None
    # The execution graph: the delegate replaces the nodes it runs by one DELEGATE node. (No reference to the
    # graph may outlive this line: the interpreter refuses to run while one exists.)
    delegated = any(it._interpreter.NodeName(i) == "DELEGATE" for i in range(it._interpreter.NumNodes()))
    delegate = "XNNPACK" if delegated else "no delegate"
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if tuple(inp["shape"]) != x.shape:
        raise EdgenasError(f"{path} takes input {list(inp['shape'])}, not {list(x.shape)}; rebuild it for this shape")
    it.set_tensor(inp["index"], x)
    it.invoke()
    output = it.get_tensor(out["index"]).copy()

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            it.invoke()
        return (time.perf_counter() - t0) / n

    module = interpreter_class.__module__.partition(".")[0]
    return Session(run, output, f"{module} {_version(module)} ({delegate})")


def _version(module: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(module.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@register_runtime("onnxruntime")
def onnxruntime_session(path: Path, x: np.ndarray, threads: int) -> Session:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: x}
    output = session.run(None, feed)[0]

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            session.run(None, feed)
        return (time.perf_counter() - t0) / n

    return Session(run, output, ort.__version__)
