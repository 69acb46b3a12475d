"""Where a profile is measured, and the one entry point that times a model there.

A profile says how its device is reached (`measure.via`): `local` (this machine), `rpc` (a device that TVM's
RPC tracker assigns for a key) or `none` (predict-only). `place` turns that into None (here) or a `Remote`,
refusing what cannot work before any work is done; `measure` times a model file on a runtime at that place,
with the fleet's retries on RPC devices.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import host
from ..device.profile import Profile
from ..device.target import ResolvedTarget
from ..errors import EdgenasError
from ..runtimes import get_runtime
from .fleet import time_remote
from .machine import exclusive
from .timing import Measurement, Timing, time_session
from .tracker import Remote, devices


def place(profile: Profile, target: ResolvedTarget) -> Remote | None:
    """Where `profile` is measured: None for this machine, a Remote for the devices of an RPC tracker's key
    (the tracker is asked whether it has any); refuse otherwise."""
    how = profile.measure
    if how["via"] == "none":
        raise EdgenasError(f"profile '{profile.name}' is predict-only (measure.via: none); {ways_to_measure(profile)}")
    if how["via"] == "rpc":
        remote = Remote(how["tracker"], how["key"], target.device, how.get("timeout_s", Remote.timeout_s),
                        how.get("call_timeout_s", Remote.call_timeout_s), tuple(how.get("cpus", ())))
        devices(remote)  # the tracker is up and has devices of the key: checked before any work
        return remote
    if not target.runs_here:
        raise EdgenasError(f"profile '{profile.name}' builds {target.machine}/{target.device} code, which cannot "
                           f"run on this machine; use --no-measure, or measure it on the device with via: rpc")
    return None


def ways_to_measure(profile: Profile) -> str:
    """Advice for a device that edgenas does not measure: only what works for this profile (a phone runs no
    edgenas, and TVM's RPC servers time TVM libraries only)."""
    ways = [] if profile.kind.startswith("mobile") else ["run edgenas on the device with measure.via: local"]
    if get_runtime(profile.runtime).remote:
        ways.append("reach it through a TVM RPC tracker with measure.via: rpc")
    imported = f"time it there with {profile.runtime} and add the latencies with edgenas store import FILE " \
               f"--target {profile.name}"
    return "; ".join([*ways, f"or {imported}" if ways else imported])


def threads_for(profile: Profile, target: ResolvedTarget, remote: Remote | None) -> int | None:
    """The thread count to time with: the target's cores, else a remote device's; None: all cores here."""
    return target.tvm.get("num-cores") or (profile.hardware.get("cores") if remote else None)


def measure(runtime: str, model_path: str | Path, x: np.ndarray, threads: int | None = None,
            timing: Timing = Timing(), remote: Remote | None = None) -> Measurement:
    """Time `model_path` on `runtime` for input `x` with `threads` threads (default: all usable cores here),
    on this machine or, given `remote`, on a device of the RPC tracker."""
    rt = get_runtime(runtime)
    threads = threads or host.cores()
    if remote:
        if not rt.remote:
            raise EdgenasError(f"{runtime} is timed on this machine only; measure the tvm runtime on remote devices")
        return time_remote(remote, [Path(model_path)], x, threads, timing)[0]
    session = rt.open(Path(model_path), x, threads)
    with exclusive() as load:
        stats = time_session(session.run, timing)
    return Measurement(runtime, session.version, threads, stats, session.outputs, other_cores=load.other_cores,
                       under_load=load.under_load)
