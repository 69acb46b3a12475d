"""Device profiles (profiles/*.yaml): what a device is, what it compiles for, its budgets, how to measure it.

The numeric hardware descriptors are what the hypernetwork conditions on; each is optional, and "auto"
means "measure it on this machine" (the `host` profile). `target: native` names the target of this
machine's own instruction set.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import host
from ..errors import EdgenasError
from ..runtimes import RUNTIMES, deployable
from .registry import Registry
from .schema import Field, load_yaml, validate
from .target import TARGETS, ResolvedTarget, resolve

KINDS = ("cpu", "gpu", "mobile-cpu", "mobile-gpu", "npu", "fpga", "asic")
HARDWARE = {
    "cores": Field("int", minimum=1, auto=True),
    "clock_ghz": Field("number", minimum=0, auto=True),
    "peak_gflops": Field("number", minimum=0, auto=True),
    "mem_bandwidth_gbs": Field("number", minimum=0, auto=True),
    "memory_mb": Field("number", minimum=0, auto=True),
    "simd_bits": Field("int", minimum=0, auto=True),
    "l1d_kb": Field("number", minimum=0, auto=True),
    "l2_kb": Field("number", minimum=0, auto=True),
    "l3_kb": Field("number", minimum=0, auto=True),
}
SPEC = {
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "kind": Field("str", required=True, choices=KINDS),
    "target": Field("str", required=True),
    "target_options": Field("map"),
    "host_options": Field("map"),
    "batch": Field("int", required=True, minimum=1),
    "runtime": Field("str", choices=deployable()),
    "hardware": Field("section", fields=HARDWARE),
    "budgets": Field("section", fields={"latency_ms": Field("number", minimum=0.001),
                                        "memory_mb": Field("number", minimum=0.001)}),
    "measure": Field("section", required=True, fields={
        "via": Field("str", required=True, choices=("local", "rpc", "none")),
        "tracker": Field("str"),
        "key": Field("str"),
        "timeout_s": Field("number", minimum=1),
        "call_timeout_s": Field("number", minimum=0.1),
        "cpus": Field("list"),
    }),
}
TRACKER = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    kind: str
    target: str
    batch: int
    measure: dict[str, Any]
    runtime: str = "tvm"  # what the device deploys: its latencies are the support set, its budget is checked on it
    hardware: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)
    target_options: dict[str, Any] = field(default_factory=dict)
    host_options: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def resolved_target(self) -> ResolvedTarget:
        return resolve(TARGETS.get(self.target), self.target_options, self.host_options)

    @property
    def measurable(self) -> bool:
        return self.measure["via"] != "none"

    def summary(self) -> str:
        """A line of `edgenas profiles list`."""
        return f"{self.name:<16} {self.kind:<11} {self.target:<13} {self.runtime:<7} {self.measure['via']:<6} " \
               f"{self.description}"

    def describe(self) -> dict[str, Any]:
        """The profile and its target as resolved on this machine (or why it cannot be): `edgenas profiles show`."""
        try:
            t = self.resolved_target()
            resolved: Any = {"tvm": t.tvm, "host": t.host, "linker": t.compiler or "native"}
        except EdgenasError as e:
            resolved = f"unresolved here: {e}"
        return {**asdict(self), "resolved_target": resolved}

    def at_batch(self, batch: int | None) -> Profile:
        """This profile with `batch` images per inference (`--batch N`); itself when `batch` is None or its own.
        A measurement records its input shape, batch included, so those at another batch never mix with these."""
        return self if batch in (None, self.batch) else replace(self, batch=batch)

    @property
    def ships_tflite(self) -> bool:
        """Whether its artifact holds model.tflite beside the TVM library: phones, and devices that deploy LiteRT."""
        return self.kind == "mobile-cpu" or self.runtime == "litert"


def load_profile(path: Path) -> Profile:
    src = str(path)
    data = validate(load_yaml(path), SPEC, src)
    if data["name"] != path.stem:
        raise EdgenasError(f"{src}: name '{data['name']}' differs from the file name; rename one so both read "
                           f"'{path.stem}'")
    if data["target"] == "native":
        data["target"] = host.machine()
    if data["target"] not in TARGETS.names():
        raise EdgenasError(f"{src}: target '{data['target']}' is not a known target (known: "
                           f"{', '.join(TARGETS.names())}); fix the name or add targets/{data['target']}.yaml")
    _check_measure(data["measure"], src)
    runtime = data.get("runtime", "tvm")
    if not RUNTIMES[runtime].remote and data["measure"]["via"] == "rpc":
        raise EdgenasError(f"{src}: runtime: {runtime} cannot be measured via: rpc (TVM's RPC servers run TVM libraries); "
                           f"measure it where edgenas runs (via: local) or not at all (via: none)")
    hardware = data.get("hardware", {})
    if any(v == "auto" for v in hardware.values()):
        detected = host.descriptors()
        hardware = {k: (detected.get(k) if v == "auto" else v) for k, v in hardware.items()}
        hardware = {k: v for k, v in hardware.items() if v is not None}
    return Profile(**{**data, "hardware": hardware}, source=src)


def _check_measure(measure: dict[str, Any], src: str) -> None:
    if measure["via"] == "rpc":
        for key in ("tracker", "key"):
            if key not in measure:
                raise EdgenasError(f"{src}: measure.{key} is missing; 'via: rpc' needs tracker: HOST:PORT and key: KEY")
        if not TRACKER.match(measure["tracker"]):
            raise EdgenasError(f"{src}: measure.tracker '{measure['tracker']}' is not HOST:PORT; write e.g. "
                               f"tracker: 127.0.0.1:9190")
        cpus = measure.get("cpus")
        if cpus is not None and (not cpus or not all(type(c) is int and c >= 0 for c in cpus)):
            raise EdgenasError(f"{src}: measure.cpus {cpus!r} is not a list of core numbers; write e.g. "
                               f"cpus: [0, 1, 2, 3], or leave it out for the big cores first")
    else:
        extra = [k for k in ("tracker", "key", "timeout_s", "call_timeout_s", "cpus") if k in measure]
        if extra:
            raise EdgenasError(f"{src}: measure.{extra[0]} only applies to 'via: rpc'; remove it or set via: rpc")


PROFILES: Registry[Profile] = Registry("profile", "profiles", load_profile)


def as_profile(profile: str | Profile) -> Profile:
    """A profile given by name (from `PROFILES`) or as a loaded one: what every API entry point accepts."""
    return PROFILES.get(profile) if isinstance(profile, str) else profile
