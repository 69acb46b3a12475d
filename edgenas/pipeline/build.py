"""Building and timing one network for a profile, the first steps of every command that makes or measures
a network: space -> network -> ONNX (and .tflite) -> compiled library (`build`), or the user's own model ->
checked, simplified ONNX (`import_user_model`) -> compiled library (`build_model`); then timed where the profile is measured, each
output checked against the reference's (PyTorch's; onnxruntime's on the user's file) and recorded in the store
(`time_built`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import host, mobile
from ..artifact.manifest import LIBRARY, ONNX, TFLITE
from ..compiler.compile import CompiledLibrary, compile_onnx
from ..compiler.export import (
    ExportResult,
    TFLiteExport,
    check_output,
    export_onnx,
    export_tflite,
)
from ..compiler.onnx_import import ImportedModel, import_model
from ..device.profile import Profile
from ..device.target import ResolvedTarget
from ..errors import EdgenasError
from ..measure.kernels import profile_kernels
from ..measure.place import measure, place, threads_for
from ..measure.timing import Measurement, Timing
from ..measure.tracker import Remote
from ..runtimes import get_runtime
from ..spaces import DEFAULT_SPACE, SearchSpace, configure
from ..store import Store


@dataclass(frozen=True)
class Built:
    """A network built for a profile: exported (or imported) and compiled into `directory`. A user's own model
    stands where a space and an architecture stand (`ImportedModel`: space `model`, arch `onnx:<hash>`)."""

    directory: Path
    profile: Profile
    target: ResolvedTarget
    space: SearchSpace | ImportedModel
    arch: str
    onnx: ExportResult
    library: CompiledLibrary
    tflite: TFLiteExport | None = None  # model.tflite, for profiles that ship LiteRT (with the [mobile] extra)


def build(profile: Profile, arch: str, out_dir: Path, space: str | SearchSpace = DEFAULT_SPACE, seed: int = 0,
          tuning_db: str | Path | None = None, model=None, tflite: bool | None = None,
          log: Callable[[str], None] = lambda _: None) -> Built:
    """Build `arch` for `profile` (or take `model`, e.g. trained weights of it), export it to out_dir/model.onnx
    and compile it to out_dir/model.so with the schedules of `tuning_db` (the target's own by default; per
    workload the shipped database where it has none: `tuning_db.databases_for`); with `tflite` (default: where
    the profile ships LiteRT and the [mobile] extra is installed), also convert it to out_dir/model.tflite.
    `space` is a space name (configured with the profile's batch) or a configured space.
    Each phase is said to `log` as it starts and ends."""
    target = profile.resolved_target()
    sp = configure(space, profile.batch)
    arch = sp.canonical(arch)
    model = sp.build(arch, seed=seed) if model is None else model
    start = time.perf_counter()
    log(f"export: {ONNX} (input {list(sp.input_shape)})")
    exported = export_onnx(model, sp.input_shape, out_dir / ONNX)
    log(f"compile: TVM for {target.name} ({target.tvm.get('mcpu') or target.tvm.get('kind')}), replaying tuned "
        f"schedules; {time.perf_counter() - start:.1f} s so far")
    library = _compile(exported, target, out_dir, tuning_db, log)
    if tflite is None:
        tflite = profile.ships_tflite and mobile.available()
    if tflite:
        log(f"convert: {TFLITE} (LiteRT)")
    converted = export_tflite(model, exported.reference_input, exported.reference_outputs, out_dir / TFLITE) \
        if tflite else None
    return Built(out_dir, profile, target, sp, arch, exported, library, converted)


def import_user_model(source: str | Path, out_dir: Path, input_shape: tuple[int, ...] | None = None,
                      log: Callable[[str], None] = lambda _: None) -> tuple[ImportedModel, ExportResult, Any]:
    """The user's model written to out_dir/model.onnx (`compiler.onnx_import.import_model`): an ONNX file (its
    dynamic dimensions fixed by `input_shape`) checked and simplified, or a PyTorch factory
    `package.module:function` (`input_shape` its example input) exported; what `build_model` compiles."""
    imported = import_model(source, out_dir / ONNX, input_shape)
    model, network = imported[0], imported[2]
    if network is None:
        log(f"import: {source} (opset {model.opset}, input {list(model.input_shape)}): checked, simplified with "
            f"onnxsim, verified with onnxruntime")
    else:
        log(f"export: {source} to {ONNX} (input {list(model.input_shape)}), verified against PyTorch")
    return imported


def build_model(profile: Profile, imported: tuple[ImportedModel, ExportResult, Any], out_dir: Path,
                tuning_db: str | Path | None = None, tflite: bool | None = None,
                log: Callable[[str], None] = lambda _: None) -> Built:
    """Compile the user's model that `import_user_model` wrote to out_dir for `profile`, to out_dir/model.so like
    `build`. A PyTorch model is also converted to .tflite where `build` would; LiteRT's converter takes no ONNX
    files."""
    target = profile.resolved_target()
    model, exported, network = imported
    log(f"compile: TVM for {target.name} ({target.tvm.get('mcpu') or target.tvm.get('kind')}), replaying tuned "
        f"schedules")
    library = _compile(exported, target, out_dir, tuning_db, log)
    if tflite is None:
        tflite = network is not None and profile.ships_tflite and mobile.available()
    if tflite:
        log(f"convert: {TFLITE} (LiteRT)")
    converted = export_tflite(network, exported.reference_input, exported.reference_outputs, out_dir / TFLITE) \
        if tflite else None
    return Built(out_dir, profile, target, model, model.arch, exported, library, converted)


def _compile(exported: ExportResult, target: ResolvedTarget, out_dir: Path, tuning_db: str | Path | None,
             log: Callable[[str], None]) -> CompiledLibrary:
    library = compile_onnx(exported.path, target, out_dir / LIBRARY, tuning_db=tuning_db)
    log(f"compiled {len(library.kernels)} kernels in {library.seconds:.1f} s ({len(library.tuned)} tuned, "
        f"{len(library.fallback)} untuned)")
    return library


def time_built(b: Built, store: Store | None, runtimes: Iterable[str] | None = None,
               timing: Timing = Timing(), log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time a built architecture where its profile says (this machine, or a device of an RPC tracker) on each
    runtime (default: tvm and, locally, onnxruntime for reference), check outputs, and record them in `store`
    together, in one transaction: an interrupted run stores all of its runtimes or none."""
    remote = place(b.profile, b.target)
    threads = threads_for(b.profile, b.target, remote)
    runtimes = list(runtimes or default_runtimes(remote, b.tflite is not None))
    log(f"measure: {', '.join(runtimes)} on {f'rpc {remote.tracker} key {remote.key}' if remote else 'this machine'}")
    measured = [measure(runtime, model_file(b, runtime), b.onnx.reference_input, threads=threads, timing=timing,
                        remote=remote) for runtime in runtimes]
    errors = [_checked(b, m) for m in measured]
    ids = store.add_all(b.profile.name, b.space.name, b.arch, b.space.input_shape, b.target.tvm, measured) \
        if store else [None] * len(measured)
    return {m.runtime: _entry(b, m, remote, error, i) for m, error, i in zip(measured, errors, ids)}


def kernel_profile(b: Built) -> dict[str, Any]:
    """The report's `kernels` entry: each TVM kernel's share of an inference, timed alone on this machine
    (`measure.kernels`), where the library runs here; else why not."""
    if b.profile.measure["via"] != "local" or not b.target.runs_here:
        return {"not_profiled_because": "kernels are timed alone on this machine only; this library runs on "
                                        f"{b.target.machine}/{b.target.device} via {b.profile.measure['via']}"}
    threads = threads_for(b.profile, b.target, None) or host.cores()
    rows = profile_kernels(b.library.path, b.library.signatures, threads)
    return {"threads": threads, "sum_us": round(sum(r["us_per_call"] * r["calls"] for r in rows), 3),
            "by_kernel": rows}


def default_runtimes(remote: Remote | None, tflite: bool) -> tuple[str, ...]:
    """What is timed by default: tvm; on this machine also onnxruntime for reference, and LiteRT if converted."""
    return ("tvm",) if remote else ("tvm", "onnxruntime", *(("litert",) if tflite else ()))


def model_file(b: Built, runtime: str) -> Path:
    """The file of `b` that `runtime` runs; a clear error where it was not made."""
    path = b.directory / get_runtime(runtime).file
    if not path.is_file():
        raise EdgenasError(f"no {path.name} was made for {b.arch}: {mobile.MISSING}")
    return path


def record_measurement(b: Built, m: Measurement, remote: Remote | None, store: Store | None,
                       profile: str | None = None) -> dict[str, Any]:
    """Check a measurement's output against the reference's (PyTorch's; onnxruntime's on a user's own model),
    record it in `store` under `profile` (default: the one it was built for), and return its report entry."""
    error = _checked(b, m)
    record_id = store.add(profile or b.profile.name, b.space.name, b.arch, b.space.input_shape, b.target.tvm, m) \
        if store else None
    return _entry(b, m, remote, error, record_id)


def _checked(b: Built, m: Measurement) -> float:
    against = {"pytorch": "PyTorch"}.get(b.onnx.reference, b.onnx.reference)
    return check_output(f"{m.runtime} ({b.arch})", m.outputs, b.onnx.reference_outputs, against=against)


def _entry(b: Built, m: Measurement, remote: Remote | None, error: float, record_id: int | None) -> dict[str, Any]:
    """A measurement as the report lists it."""
    return {**m.stats.as_dict(), "threads": m.threads, "version": m.runtime_version,
            "where": f"rpc {remote.tracker} key {remote.key}" if remote and m.runtime == "tvm" else "this machine",
            "device": m.device, f"max_abs_error_vs_{b.onnx.reference}": error, "store_id": record_id,
            "other_cores": None if m.other_cores is None else round(m.other_cores, 3), "under_load": m.under_load}


def litert_here(b: Built, store: Store | None, measure_here: bool = True, timing: Timing = Timing()) -> dict[str, Any]:
    """The report's `litert` entry: model.tflite and how it was checked, and, for a device that is not this
    machine, its LiteRT latency here (XNNPACK, the profile's threads as far as this machine has cores), stored
    under the `host` profile: a measurement belongs to the device that took it, so it never conditions the
    phone's predictions. Without the [mobile] extra, what installing it would add."""
    if b.tflite is None:
        return {"missing": mobile.MISSING}
    entry: dict[str, Any] = {"file": TFLITE, "converter": b.tflite.converter, "seconds": round(b.tflite.seconds, 3),
                             "max_abs_error_vs_pytorch": b.tflite.max_abs_error}
    if measure_here and (b.profile.measure["via"] != "local" or not b.target.runs_here):
        threads = min(threads_for(b.profile, b.target, None) or host.cores(), host.cores())
        m = measure("litert", b.tflite.path, b.onnx.reference_input, threads=threads, timing=timing)
        entry["latency_here"] = {**record_measurement(b, m, None, store, profile="host"), "stored_as": "host"}
    return entry
