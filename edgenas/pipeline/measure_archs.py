"""`edgenas measure`: build, compile, time and store architectures on a profile's device, resuming from what the
store holds; on an RPC profile across every device of its key (`measure.fleet.Fleet`) while the next
architectures are built. `measure --model`: the user's own model, the same way (`measure_model`).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .. import host, mobile
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.fleet import Fleet, FleetReport, Job, Result
from ..measure.place import place, threads_for
from ..measure.timing import Timing
from ..spaces import DEFAULT_SPACE, SearchSpace, configure
from ..store import Store
from .build import Built, build, build_model, default_runtimes, import_user_model, record_measurement, time_built


@dataclass(frozen=True)
class MeasureRun:
    rows: list[dict[str, Any]]  # one per architecture measured now, in the order the results arrived
    skipped: list[str]  # architectures the store already held for the profile
    failed: dict[str, str]  # architecture -> why it could not be measured (RPC profiles; locally an error stops)
    fleet: FleetReport | None  # devices used, dropped and flagged (RPC profiles)
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "skipped": self.skipped, "failed": self.failed,
                "fleet": self.fleet.as_dict() if self.fleet else None, "seconds": round(self.seconds, 2)}

    def table(self) -> str:
        """What `edgenas measure` prints: each architecture's timings, the rate, and each device of a fleet."""
        lines = []
        for row in self.rows:
            lines.append(row["arch"])
            for runtime, s in row.items():
                if runtime != "arch":
                    flag = ("" if s["stable"] else "  UNSTABLE: repeats spread too wide (edgenas store remove "
                            "--unstable drops it)") + ("  UNDER LOAD: not used as support; a rerun measures it again"
                                                       if s.get("under_load") else "")
                    lines.append(f"  {runtime:<12} p50 {s['p50_ms']:9.3f} ms  p90 {s['p90_ms']:9.3f} ms  spread "
                                 f"{100 * s['spread']:4.1f}%  on {s['device']}  stored as #{s['store_id']}{flag}")
        rate = f", {60 * len(self.rows) / self.seconds:.1f} per minute" if self.rows and self.seconds else ""
        unstable = sum(not s["stable"] for row in self.rows for k, s in row.items() if k != "arch")
        lines.append(f"measured {len(self.rows)} in {self.seconds:.1f} s{rate}; {len(self.skipped)} already stored"
                     + (f"; {unstable} unstable measurements (marked)" if unstable else ""))
        if self.fleet:
            f = self.fleet
            for device, n in sorted(f.jobs_per_device.items()):
                canary = f"  reference {f.canary_ms[device]:.3f} ms" if device in f.canary_ms else ""
                flag = f"  FLAGGED: {f.flagged[device]:.2f}x its siblings' median" if device in f.flagged else ""
                lines.append(f"device {device:<21} {n:4d} measured{canary}{flag}")
            for device, why in sorted(f.dropped.items()):
                lines.append(f"device {device:<21} dropped: {why}")
        return "\n".join(lines)


def measure_model(profile: str | Profile, source: str | Path, input_shape: tuple[int, ...] | None = None,
                  db: str | Path | None = None, runtimes: Iterable[str] | None = None,
                  tuning_db: str | Path | None = None, timing: Timing = Timing(),
                  log: Callable[[str], None] = lambda _: None) -> MeasureRun:
    """`edgenas measure --model`: import and compile the user's model (as `compile --model` does), time it where
    the profile says on each runtime the store does not hold yet for it (under space `model` and the model's
    hash), and record it."""
    profile = as_profile(profile)
    remote = place(profile, profile.resolved_target())
    start = time.monotonic()
    with Store(db) as store, tempfile.TemporaryDirectory(prefix="edgenas-") as tmp:
        store.require_writable()
        runtimes = tuple(runtimes or default_runtimes(remote, False))
        if "litert" in runtimes:
            raise EdgenasError("measure --model times tvm and onnxruntime; LiteRT needs the model.tflite that "
                               "compile --model converts from a PyTorch factory")
        if remote and runtimes != ("tvm",):
            raise EdgenasError(f"profile '{profile.name}' is measured on RPC devices, which run the tvm runtime "
                               f"only; leave out --runtime")
        imported = import_user_model(source, Path(tmp), input_shape, log)
        model = imported[0]
        missing = [r for r in runtimes
                   if model.arch not in store.latest(profile.name, model.name, model.input_shape, r)]
        if not missing:  # found before compiling it
            log(f"{model.arch} ({source}) is already in the store for '{profile.name}'")
            return MeasureRun([], [model.arch], {}, None, time.monotonic() - start)
        b = build_model(profile, imported, Path(tmp), tuning_db, tflite=False, log=log)
        latency = time_built(b, store, missing, timing, log=log)
    return MeasureRun([{"arch": b.arch, **latency}], [], {}, None, time.monotonic() - start)


def measure_archs(profile: str | Profile, archs: list[str], space: str | SearchSpace = DEFAULT_SPACE,
                  db: str | Path | None = None, runtimes: Iterable[str] | None = None,
                  tuning_db: str | Path | None = None, parallel: int | None = None, timing: Timing = Timing(),
                  log: Callable[[str], None] = lambda _: None) -> MeasureRun:
    """`edgenas measure`: build, compile, time and record each architecture the store does not hold yet for the
    profile (so a rerun resumes). An RPC profile's architectures are timed across the devices of its key,
    `parallel` at a time (default: every device registered), while the next ones are built; each result is
    stored as it arrives."""
    profile = as_profile(profile)
    target = profile.resolved_target()
    remote = place(profile, target)
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
    sp = configure(space, profile.batch)
    wanted = list(dict.fromkeys(sp.canonical(a) for a in archs))
    start = time.monotonic()
    rows: list[dict[str, Any]] = []
    with Store(db) as store, tempfile.TemporaryDirectory(prefix="edgenas-") as tmp:
        store.require_writable()
        stored = [store.latest(profile.name, sp.name, sp.input_shape, r) for r in runtimes]
        missing = {a: [r for r, s in zip(runtimes, stored) if a not in s] for a in wanted}  # a rerun adds no twin
        skipped = [a for a in wanted if not missing[a]]
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
                done(b, time_built(b, store, missing[b.arch], timing))
            return MeasureRun(rows, skipped, {}, None, time.monotonic() - start)
        building: dict[str, Built] = {}

        def jobs() -> Iterator[Job]:
            for b in builds():
                building[b.arch] = b
                yield Job(b.arch, (b.library.path,), b.onnx.reference_input)

        def arrived(result: Result) -> None:
            b = building.pop(result.job.key)
            done(b, {"tvm": record_measurement(b, result.measurements[0], remote, store)})

        threads = threads_for(profile, target, remote) or host.cores()
        report = Fleet(remote, threads, timing, parallel, canary=True, log=log).run(jobs(), arrived)
    return MeasureRun(rows, skipped, {str(k): v for k, v in report.failed.items()}, report,
                      time.monotonic() - start)
