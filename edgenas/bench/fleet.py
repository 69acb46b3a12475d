"""`edgenas bench fleet`: how measurement throughput grows with the devices of a fleet, on a loopback fleet of
this machine (a real TVM RPC tracker and real RPC servers on 127.0.0.1, `loopback.LoopbackFleet`).

The architectures are built once; the same libraries are then timed through a fleet of each size, each device
timing with one thread, the devices sharing this machine's cores. The figure is what more devices add:
architectures timed per minute and the speed-up over one device. Building is reported beside it: `edgenas
measure` builds the next architectures while devices time the last ones, so the host's build rate bounds its
throughput once the devices are faster than that.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..device.profile import PROFILES
from ..measure.fleet import Fleet, Job, Result
from ..measure.loopback import LoopbackFleet
from ..measure.timing import Timing
from ..measure.tracker import Remote
from ..pipeline.build import build, record_measurement
from ..spaces import DEFAULT_SPACE, configure


def bench_fleet(servers: tuple[int, ...] = (1, 2), count: int = 10, space: str = DEFAULT_SPACE, seed: int = 0,
                timing: Timing = Timing(), log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    profile = PROFILES.get("host")
    sp = configure(space, profile.batch)
    archs = sp.sample(count, seed)
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory(prefix="edgenas-bench-") as tmp:
        start = time.monotonic()
        built = {}
        for i, arch in enumerate(archs):
            log(f"building {i + 1}/{count}: {arch}")
            work = Path(tmp) / str(i)
            work.mkdir()
            built[arch] = build(profile, arch, work, space=sp)
        build_s = time.monotonic() - start
        runs = []
        for k in servers:
            log(f"timing {count} architectures on {k} loopback servers")
            with LoopbackFleet() as fleet:
                fleet.add_servers("bench", k)

                def checked(result: Result) -> None:  # the output against PyTorch's; nothing is stored
                    record_measurement(built[result.job.key], result.measurements[0], None, None)

                jobs = [Job(b.arch, (b.library.path,), b.onnx.reference_input) for b in built.values()]
                report = Fleet(Remote(fleet.tracker, "bench", cpus=cpus), threads=1, timing=timing,
                               parallel=k).run(jobs, checked)
            runs.append({"servers": k, "seconds": round(report.seconds, 2), "done": report.done,
                         "failed": len(report.failed), "per_minute": round(60 * report.done / report.seconds, 2),
                         "jobs_per_device": sorted(report.jobs_per_device.values(), reverse=True)})
    for r in runs:  # over the first fleet size asked for (one device, by default)
        r["speedup"] = round(r["per_minute"] / runs[0]["per_minute"], 3) if runs[0]["per_minute"] else None
    return {"archs": count, "space": sp.name, "cores": len(cpus), "build_seconds": round(build_s, 2),
            "builds_per_minute": round(60 * count / build_s, 2), "runs": runs}


def table(result: dict[str, Any]) -> str:
    lines = [f"{result['archs']} {result['space']} architectures, built once in {result['build_seconds']:.0f} s "
             f"({result['builds_per_minute']:.1f} per minute on this host); timed through a loopback fleet on "
             f"{result['cores']} cores, 1 thread per device",
             f"{'servers':>7} {'seconds':>8} {'archs/min':>9} {'speed-up':>8}  per device"]
    for r in result["runs"]:
        failed = f"  ({r['failed']} failed)" if r["failed"] else ""
        lines.append(f"{r['servers']:>7} {r['seconds']:8.1f} {r['per_minute']:9.1f} "
                     f"{r['speedup']:8.2f}  {', '.join(map(str, r['jobs_per_device']))}{failed}")
    return "\n".join(lines)
