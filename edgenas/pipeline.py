"""The path from an architecture to a measured artifact, in order:
profile -> network -> ONNX -> compiled library -> measurements -> store -> artifact directory.

`compile_artifact` is what `edgenas compile` runs; `measure_archs` is what `edgenas measure` runs (on an RPC
profile across the devices of its fleet, `fleet.Fleet`). Both use `build` for the first steps, so an
architecture is built, exported and compiled in exactly one way.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import __version__, host, mobile
from .compile import CompiledLibrary, compile_onnx
from .errors import EdgenasError
from .export import INPUT_NAME, OUTPUT_NAME, ExportResult, TFLiteExport, check_output, export_onnx, export_tflite
from .fleet import Fleet, FleetReport, Job, Result, devices
from .header import c_header
from .measure import Measurement, Remote, Timing, measure
from .profile import PROFILES, Profile
from .report import write_html
from .runtime import LIBRARY, TFLITE, sha256
from .spaces import SearchSpace, get_space
from .store import Store
from .target import ResolvedTarget
from .train import Dataset, TrainResult, load_dataset, train

TOLERANCE = 1e-4  # accepted difference from PyTorch's output, relative to outputs larger than 1


@dataclass(frozen=True)
class Built:
    profile: Profile
    target: ResolvedTarget
    space: SearchSpace
    arch: str
    onnx: ExportResult
    library: CompiledLibrary
    tflite: TFLiteExport | None = None  # model.tflite, for profiles that ship LiteRT (with the [mobile] extra)


@dataclass(frozen=True)
class Artifact:
    directory: Path
    manifest: dict[str, Any]
    report: dict[str, Any]


def build(profile: Profile, arch: str, out_dir: Path, space: str | SearchSpace = "nb201", seed: int = 0,
          tuning_db: str | Path | None = None, model=None, tflite: bool | None = None) -> Built:
    """Build `arch` for `profile` (or take `model`, e.g. trained weights of it), export it to out_dir/model.onnx
    and compile it to out_dir/model.so with the schedules of `tuning_db` (default: `tune.default_database`);
    with `tflite` (default: where the profile ships LiteRT and the [mobile] extra is installed), also convert it
    to out_dir/model.tflite. `space` is a space name (configured with the profile's batch) or a configured space."""
    target = profile.resolved_target()
    sp = configured_space(space, profile)
    arch = sp.canonical(arch)
    model = sp.build(arch, seed=seed) if model is None else model
    exported = export_onnx(model, sp.input_shape, out_dir / "model.onnx", tolerance=TOLERANCE)
    library = compile_onnx(exported.path, target, out_dir / LIBRARY, tuning_db=tuning_db)
    if tflite is None:
        tflite = profile.ships_tflite and mobile.available()
    converted = export_tflite(model, exported.reference_input, exported.reference_output, out_dir / TFLITE,
                              TOLERANCE) if tflite else None
    return Built(profile, target, sp, arch, exported, library, converted)


def measurement_place(profile: Profile, target: ResolvedTarget) -> Remote | None:
    """Where `profile` is measured: None for this machine, a Remote for the devices of an RPC tracker's key
    (the tracker is asked whether it has any); refuse otherwise."""
    how = profile.measure
    if how["via"] == "none":
        raise EdgenasError(f"profile '{profile.name}' is predict-only (measure.via: none); give it via: local "
                           f"or via: rpc to measure it")
    if how["via"] == "rpc":
        remote = Remote(how["tracker"], how["key"], target.device, how.get("timeout_s", Remote.timeout_s),
                        how.get("call_timeout_s", Remote.call_timeout_s), tuple(how.get("cpus", ())))
        devices(remote)  # the tracker is up and has devices of the key: checked before any work
        return remote
    if not target.runs_here:
        raise EdgenasError(f"profile '{profile.name}' builds {target.machine}/{target.device} code, which cannot "
                           f"run on this machine; use --no-measure, or measure it on the device with via: rpc")
    return None


def measurement_threads(profile: Profile, target: ResolvedTarget, remote: Remote | None) -> int | None:
    """The thread count to time with: the target's cores, else a remote device's; None: all cores here."""
    return target.tvm.get("num-cores") or (profile.hardware.get("cores") if remote else None)


def time_built(b: Built, store: Store | None, runtimes: Iterable[str] | None = None,
               timing: Timing = Timing()) -> dict[str, Any]:
    """Time a built architecture where its profile says (this machine, or a device of an RPC tracker) on each
    runtime (default: tvm and, locally, onnxruntime for reference), check outputs, record each in `store`."""
    remote = measurement_place(b.profile, b.target)
    threads = measurement_threads(b.profile, b.target, remote)
    results: dict[str, Any] = {}
    for runtime in runtimes or default_runtimes(remote, b.tflite is not None):
        m = measure(runtime, model_file(b, runtime), b.onnx.reference_input, threads=threads, timing=timing,
                    remote=remote)
        results[runtime] = record_measurement(b, m, remote, store)
    return results


def default_runtimes(remote: Remote | None, tflite: bool) -> tuple[str, ...]:
    """What is timed by default: tvm; on this machine also onnxruntime for reference, and LiteRT if converted."""
    return ("tvm",) if remote else ("tvm", "onnxruntime", *(("litert",) if tflite else ()))


def model_file(b: Built, runtime: str) -> Path:
    """The file of `b` that `runtime` runs; a clear error where it was not made."""
    files = {"tvm": b.library.path, "onnxruntime": b.onnx.path, "litert": b.tflite.path if b.tflite else None}
    if runtime not in files:
        raise EdgenasError(f"no runtime '{runtime}'; known: {', '.join(files)}")
    if files[runtime] is None:
        raise EdgenasError(f"no model.tflite was made for {b.arch}: {mobile.MISSING}")
    return files[runtime]


def record_measurement(b: Built, m: Measurement, remote: Remote | None, store: Store | None,
                       profile: str | None = None) -> dict[str, Any]:
    """Check a measurement's output against PyTorch's, record it in `store` under `profile` (default: the one it
    was built for), and return its report entry."""
    error = check_output(f"{m.runtime} ({b.arch})", m.output, b.onnx.reference_output, TOLERANCE)
    record_id = store.add(profile or b.profile.name, b.space.name, b.arch, b.space.input_shape, b.target.tvm, m) \
        if store else None
    return {**m.stats.as_dict(), "threads": m.threads, "version": m.runtime_version,
            "where": f"rpc {remote.tracker} key {remote.key}" if remote and m.runtime == "tvm" else "this machine",
            "device": m.device, "max_abs_error_vs_pytorch": error, "store_id": record_id}


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
        threads = min(measurement_threads(b.profile, b.target, None) or host.cores(), host.cores())
        m = measure("litert", b.tflite.path, b.onnx.reference_input, threads=threads, timing=timing)
        entry["latency_here"] = {**record_measurement(b, m, None, store, profile="host"), "stored_as": "host"}
    return entry


def compile_artifact(profile: str | Profile, arch: str, out_dir: str | Path, space: str | SearchSpace = "nb201",
                     db: str | Path | None = None, measure_latency: bool = True, seed: int = 0,
                     tuning_db: str | Path | None = None, data: str | Path | None = None, epochs: int = 30,
                     log: Callable[[str], None] = lambda _: None) -> Artifact:
    """`edgenas compile --arch`: write model.onnx, model.so, manifest.json and report.json for `arch`; with
    `data`, the network is trained on it first and the trained weights are compiled."""
    profile = PROFILES.get(profile) if isinstance(profile, str) else profile
    if measure_latency and profile.measurable:
        measurement_place(profile, profile.resolved_target())
    out_dir = prepare_output(out_dir)
    extra: dict[str, Any] = {}
    model = None
    if data is not None:
        dataset = load_dataset(data)
        space = configured_space(space, profile, dataset)
        trained = train(lambda: space.build(space.canonical(arch), seed=seed), dataset, epochs=epochs, seed=seed,
                        log=log)
        model, extra["training"] = trained.model, training_report(dataset, trained, epochs, seed)
    b = build(profile, arch, out_dir, space=space, seed=seed, tuning_db=tuning_db, model=model)
    latency: dict[str, Any] = {}
    if measure_latency and (profile.measurable or b.tflite):
        with Store(db) as store:
            latency = time_built(b, store) if profile.measurable else {}
            if profile.ships_tflite:
                extra["litert"] = litert_here(b, store)
    elif profile.ships_tflite:
        extra["litert"] = litert_here(b, None, measure_here=False)
    reason = "--no-measure" if not measure_latency else f"profile '{profile.name}' has measure.via: none (predict-only)"
    return write_artifact(b, out_dir, latency, extra if latency else {**extra, "not_measured_because": reason})


def configured_space(space: str | SearchSpace, profile: Profile, data: Dataset | None = None) -> SearchSpace:
    """`space` as a configured search space: a name is configured with the profile's batch, a configured
    space is kept; with `data`, its image size, channels and classes and the profile's batch replace those
    settings (the rest, such as a configured space's width, kept)."""
    if data is None:
        return space if isinstance(space, SearchSpace) else get_space(space, batch=profile.batch)
    config = dataclasses.asdict(space.config) if isinstance(space, SearchSpace) else {}
    name = space.name if isinstance(space, SearchSpace) else space
    channels, size, _ = data.image_shape
    try:
        return get_space(name, **{**config, "batch": profile.batch, "input_size": size, "in_channels": channels,
                                  "num_classes": len(data.classes)})
    except EdgenasError as e:
        raise EdgenasError(f"{data.source}: {e}") from None


def training_report(data: Dataset, trained: TrainResult, epochs: int, seed: int) -> dict[str, Any]:
    return {"data": data.source, "classes": list(data.classes), "image_shape": list(data.image_shape),
            "max_epochs": epochs, "seed": seed, **trained.as_dict()}


def compile_for_budget(profile: str | Profile, latency_ms: float, out_dir: str | Path, space: str | SearchSpace = "nb201",
                       db: str | Path | None = None, memory_mb: float | None = None, measurements: int = 6,
                       seed: int = 0, log: Callable[[str], None] = lambda _: None,
                       tuning_db: str | Path | None = None, data: str | Path | None = None, epochs: int = 30,
                       accuracy_shots: int = 0, shot_epochs: int = 3) -> Artifact:
    """`edgenas compile --latency-ms`: generate the architecture with the best expected accuracy that fits the
    budgets, conditioned on the store's measurements of this profile; measure each candidate on the device,
    record it, and re-condition after a miss, within `measurements` new measurements. With `data`, the pick
    is trained on it before it is compiled, and `accuracy_shots` sampled architectures, each trained for
    `shot_epochs`, first give the task conditioning (architecture, accuracy) pairs of the user's task."""
    from .conditioning import descriptor_vector
    from .metatrain import SHIPPED, Trained
    from .search import search

    profile = PROFILES.get(profile) if isinstance(profile, str) else profile
    target = profile.resolved_target()
    if accuracy_shots and data is None:
        raise EdgenasError("--accuracy-shots trains sampled architectures on your data; give it with --data")
    if profile.measurable:
        measurement_place(profile, target)
        if profile.runtime == "litert" and not mobile.available():
            raise EdgenasError(f"profile '{profile.name}' deploys LiteRT, so its candidates are timed with it: "
                               f"{mobile.MISSING}")
    memory_mb = memory_mb or profile.budgets.get("memory_mb")
    out_dir = prepare_output(out_dir)
    dataset = load_dataset(data) if data is not None else None
    sp = configured_space(space, profile, dataset)
    archs = list(sp.enumerate())
    x = np.stack([sp.encode(a) for a in archs])
    allowed = np.array([sp.costs(a).memory_mb <= memory_mb for a in archs]) if memory_mb else None
    trained = Trained.load(SHIPPED)
    prior_accuracy = trained.accuracy.predict(x)
    shots = accuracy_shot_pairs(sp, archs, allowed, dataset, accuracy_shots, shot_epochs, seed, log) \
        if accuracy_shots else {}
    with Store(db) as store, tempfile.TemporaryDirectory(prefix="edgenas-") as tmp:
        latest = store.latest(profile.name, sp.name, sp.input_shape, runtime=profile.runtime)
        support = ([sp.index(a) for a in latest], list(latest.values()))
        log(f"{len(latest)} stored {profile.runtime} measurements of '{profile.name}' condition the predictor")
        if not profile.measurable and not latest:
            raise EdgenasError(f"profile '{profile.name}' is predict-only (measure.via: none) and the store has no "
                               f"measurements of it; give it via: rpc to measure the device, or use --arch")
        built: dict[int, tuple[Built, dict[str, Any]]] = {}

        def measure_candidate(i: int) -> float:
            work = Path(tmp) / str(i)
            work.mkdir()
            b = build(profile, archs[i], work, space=sp, seed=seed, tuning_db=tuning_db)
            built[i] = (b, time_built(b, store))
            ms = built[i][1][profile.runtime]["p50_ms"]
            log(f"measured {archs[i]}: {ms:.3f} ms ({'fits' if ms <= latency_ms else 'misses'} {latency_ms:g} ms)")
            return ms

        result = search(x, trained, descriptor_vector(profile), latency_ms, measure_candidate,
                        measurements if profile.measurable else 0, prior_accuracy, allowed=allowed,
                        memory_mb=memory_mb, support=support, seed=seed,
                        accuracy_support=([sp.index(a) for a in shots], list(shots.values())))
        report = {"latency_budget_ms": latency_ms, "memory_budget_mb": memory_mb,
                  "stored_measurements_used": len(latest), "new_measurements": len(result.candidates),
                  "accuracy_shots_used": len(shots),
                  "verified": result.verified, "accuracy_prior": trained.accuracy_task,
                  "candidates": [{"arch": archs[c.index],
                                  "predicted_ms": None if c.predicted_ms is None else round(c.predicted_ms, 4),
                                  "measured_ms": round(c.measured_ms, 4), "fits": c.measured_ms <= latency_ms,
                                  "predicted_accuracy": c.predicted_accuracy} for c in result.candidates]}
        budgets = {**profile.budgets, "latency_ms": latency_ms, **({"memory_mb": memory_mb} if memory_mb else {})}
        if profile.measurable and (not result.verified or result.pick not in built):
            closest = min((c.measured_ms for c in result.candidates), default=float("nan"))
            raise EdgenasError(f"no candidate measured within {latency_ms:g} ms after {len(result.candidates)} "
                               f"measurements (fastest {closest:.3f} ms); raise --latency-ms or --measurements")
        pick = archs[result.pick]
        extra: dict[str, Any] = {"search": report}
        model = None
        if dataset is not None:
            log(f"training the pick {pick}")
            done = train(lambda: sp.build(pick, seed=seed), dataset, epochs=epochs, seed=seed, log=log)
            model, extra["training"] = done.model, training_report(dataset, done, epochs, seed)
            if shots:
                extra["accuracy_shots"] = compare_with_shots(sp, pick, shots, dataset, shot_epochs, seed, log)
        if not profile.measurable:  # predicted to fit with the search's safety margin, not verified
            b = build(profile, pick, out_dir, space=sp, seed=seed, tuning_db=tuning_db, model=model)
            predicted = trained.model.predict(descriptor_vector(profile), x[support[0]], np.asarray(support[1]),
                                              x[[result.pick]])
            report["predicted_ms"] = round(float(predicted[0]), 4)
            if profile.ships_tflite:
                extra["litert"] = litert_here(b, store)
            return write_artifact(b, out_dir, {}, {**extra, "not_measured_because":
                                                   f"profile '{profile.name}' has measure.via: none (predict-only)"},
                                  budgets)
        if model is not None:  # the trained weights: compiled and measured again, as they ship
            b = build(profile, pick, out_dir, space=sp, seed=seed, tuning_db=tuning_db, model=model)
            latency = time_built(b, store)
        else:
            b, latency = built[result.pick]
            for name in ("model.onnx", LIBRARY, *((TFLITE,) if b.tflite else ())):
                shutil.copyfile(b.onnx.path.parent / name, out_dir / name)
        if profile.ships_tflite:
            extra["litert"] = litert_here(b, store)
        return write_artifact(b, out_dir, latency, extra, budgets)


def accuracy_shot_pairs(sp: SearchSpace, archs: list[str], allowed: np.ndarray | None, data: Dataset, shots: int,
                        epochs: int, seed: int, log: Callable[[str], None]) -> dict[str, float]:
    """`shots` architectures sampled from those within the memory budget, each trained briefly (`epochs`) on
    `data`: their validation accuracies are the task's support set."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(allowed) if allowed is not None else np.arange(len(archs))
    pool = [i for i in pool if not sp.is_degenerate(archs[i])]
    pairs = {}
    for k, i in enumerate(rng.choice(pool, size=min(shots, len(pool)), replace=False), start=1):
        arch = archs[int(i)]
        done = train(lambda: sp.build(arch, seed=seed), data, epochs=epochs, seed=seed, patience=epochs)
        pairs[arch] = done.val_accuracy
        log(f"accuracy shot {k}/{shots}: {arch} {done.val_accuracy:.2f}% after {done.epochs_run} epochs")
    return pairs


def compare_with_shots(sp: SearchSpace, pick: str, shots: dict[str, float], data: Dataset, epochs: int, seed: int,
                       log: Callable[[str], None]) -> dict[str, Any]:
    """The pick's accuracy after the shots' short training, beside the sampled architectures' accuracies."""
    same = shots.get(pick)
    if same is None:
        same = train(lambda: sp.build(pick, seed=seed), data, epochs=epochs, seed=seed, patience=epochs).val_accuracy
    beaten = sum(a < same for a in shots.values())
    log(f"the pick reaches {same:.2f}% after {epochs} epochs; the {len(shots)} sampled architectures "
        f"{min(shots.values()):.2f}-{max(shots.values()):.2f}% (it beats {beaten})")
    return {"epochs": epochs, "sampled": [{"arch": a, "val_accuracy": round(v, 3)} for a, v in shots.items()],
            "pick_val_accuracy": round(same, 3), "pick_beats": beaten,
            "best_sampled_val_accuracy": round(max(shots.values()), 3)}


def write_artifact(b: Built, out_dir: Path, latency: dict[str, Any], extra: dict[str, Any],
                   budgets: dict[str, float] | None = None) -> Artifact:
    """Write model.h, manifest.json, report.json and report.html (with report.png) beside model.onnx, model.so
    (and model.tflite) in `out_dir`; `budgets` default to the profile's, and the latency budget is checked on
    the runtime the profile deploys."""
    profile = b.profile
    budgets = profile.budgets if budgets is None else budgets
    costs = b.space.costs(b.arch)
    manifest = {
        "edgenas_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "space": b.space.name,
        "arch": b.arch,
        "profile": profile.name,
        "runtime": profile.runtime,
        "target": {"name": b.target.name, "machine": b.target.machine, "device": b.target.device,
                   "tvm": b.target.tvm, "host": b.target.host},
        "inputs": [{"name": INPUT_NAME, "shape": list(b.onnx.input_shape), "dtype": "float32"}],
        "outputs": [{"name": OUTPUT_NAME, "shape": list(b.onnx.output_shape), "dtype": "float32",
                     **({"classes": extra["training"]["classes"]} if "training" in extra else {})}],
        "versions": _versions(),
    }
    (out_dir / "model.h").write_text(c_header(manifest))
    manifest["files"] = {name: sha256(out_dir / name)
                         for name in ("model.onnx", LIBRARY, "model.h", *((TFLITE,) if b.tflite else ()))}
    report = {
        "arch": b.arch,
        "profile": profile.name,
        "runtime": profile.runtime,
        "target": b.target.name,
        "costs": costs.as_dict(),
        "budgets": budgets,
        "fits_memory_budget": costs.memory_mb <= budgets["memory_mb"] if "memory_mb" in budgets else None,
        "export": {"opset": 18, "max_abs_error_onnxruntime_vs_pytorch": b.onnx.max_abs_error},
        "compile": {"seconds": round(b.library.seconds, 3), "kernels": len(b.library.kernels),
                    "tuned": list(b.library.tuned), "fallback": list(b.library.fallback),
                    "tuning_db": str(b.library.tuning_db) if b.library.tuning_db else None},
        "measured": bool(latency),
        "latency_ms": latency,
        **extra,
    }
    if latency:
        tvm_p50 = latency["tvm"]["p50_ms"]
        if "onnxruntime" in latency:
            report["tvm_vs_onnxruntime"] = round(tvm_p50 / latency["onnxruntime"]["p50_ms"], 4)
        if "latency_ms" in budgets and profile.runtime in latency:
            report["fits_latency_budget"] = latency[profile.runtime]["p50_ms"] <= budgets["latency_ms"]
    for name, content in (("manifest.json", manifest), ("report.json", report)):
        (out_dir / name).write_text(json.dumps(content, indent=2) + "\n")
    write_html(report, out_dir)
    return Artifact(out_dir, manifest, report)


@dataclass(frozen=True)
class MeasureRun:
    rows: list[dict[str, Any]]  # one per architecture measured now, in the order the results arrived
    skipped: list[str]  # architectures the store already held for the profile
    failed: dict[str, str]  # architecture -> why it could not be measured (RPC profiles; locally an error stops)
    fleet: FleetReport | None  # devices used, dropped and flagged (RPC profiles)
    seconds: float


def measure_archs(profile: str | Profile, archs: list[str], space: str | SearchSpace = "nb201",
                  db: str | Path | None = None, runtimes: Iterable[str] | None = None,
                  tuning_db: str | Path | None = None, parallel: int | None = None, timing: Timing = Timing(),
                  log: Callable[[str], None] = lambda _: None) -> MeasureRun:
    """`edgenas measure`: build, compile, time and record each architecture the store does not hold yet for the
    profile (so a rerun resumes). An RPC profile's architectures are timed across the devices of its key,
    `parallel` at a time (default: every device registered), while the next ones are built; each result is
    stored as it arrives."""
    profile = PROFILES.get(profile) if isinstance(profile, str) else profile
    target = profile.resolved_target()
    remote = measurement_place(profile, target)
    runtimes = tuple(runtimes or default_runtimes(remote, profile.ships_tflite and mobile.available()))
    if remote and runtimes != ("tvm",):
        raise EdgenasError(f"profile '{profile.name}' is measured on RPC devices, which run the tvm runtime only; "
                           f"leave out --runtime")
    if "litert" in runtimes and not mobile.available():
        raise EdgenasError(mobile.MISSING)
    if parallel and parallel > 1 and not remote:
        raise EdgenasError(f"--parallel {parallel} needs a fleet: profile '{profile.name}' is measured on this "
                           f"machine, where parallel timings would share its cores; measure one at a time, or "
                           f"use a profile with measure.via: rpc")
    sp = configured_space(space, profile)
    wanted = list(dict.fromkeys(sp.canonical(a) for a in archs))
    start = time.monotonic()
    rows: list[dict[str, Any]] = []
    with Store(db) as store, tempfile.TemporaryDirectory(prefix="edgenas-") as tmp:
        stored = [store.latest(profile.name, sp.name, sp.input_shape, r) for r in runtimes]
        skipped = [a for a in wanted if all(a in s for s in stored)]
        todo = [a for a in wanted if a not in skipped]
        log(f"{len(wanted)} architectures: {len(skipped)} already in the store for '{profile.name}', "
            f"{len(todo)} to measure")

        def builds() -> Iterator[Built]:
            for i, arch in enumerate(todo):
                work = Path(tmp) / str(i)  # a library path of its own: dlopen reuses a path loaded before
                work.mkdir()
                yield build(profile, arch, work, space=sp, tuning_db=tuning_db, tflite="litert" in runtimes)

        def done(b: Built, latency: dict[str, Any]) -> None:
            rows.append({"arch": b.arch, **latency})
            t = latency["tvm"] if "tvm" in latency else next(iter(latency.values()))
            log(f"[{len(rows)}/{len(todo)}] p50 {t['p50_ms']:.3f} ms on {t['device']}, stored as #{t['store_id']}: "
                f"{b.arch}")

        if remote is None or not todo:
            for b in builds():
                done(b, time_built(b, store, runtimes, timing))
            return MeasureRun(rows, skipped, {}, None, time.monotonic() - start)
        building: dict[str, Built] = {}

        def jobs() -> Iterator[Job]:
            for b in builds():
                building[b.arch] = b
                yield Job(b.arch, (b.library.path,), b.onnx.reference_input)

        def arrived(result: Result) -> None:
            b = building.pop(result.job.key)
            done(b, {"tvm": record_measurement(b, result.measurements[0], remote, store)})

        threads = measurement_threads(profile, target, remote) or host.cores()
        report = Fleet(remote, threads, timing, parallel, canary=True, log=log).run(jobs(), arrived)
    return MeasureRun(rows, skipped, {str(k): v for k, v in report.failed.items()}, report,
                      time.monotonic() - start)


def prepare_output(out_dir: str | Path) -> Path:
    """Create the output directory and prove it writable before any work is done."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgenasError(f"output path {out_dir} is a file, not a directory; pass a directory with -o")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise EdgenasError(f"cannot write to output directory {out_dir} ({e.strerror}); pass a writable "
                           f"directory with -o") from None
    return out_dir


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import tvm

    return {"edgenas": __version__, "tvm": tvm.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}
