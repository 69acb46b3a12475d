"""Compilation targets (targets/*.yaml): what TVM compiles for, how the library is linked, where it can run.

A target file is data: the TVM target as a JSON-style dict (values of "auto" are detected on this machine),
an optional host target for accelerators, the instruction set of the built library, and the C compiler
that links it when that instruction set is not this machine's. `resolve` turns a target plus a profile's
overrides into a `ResolvedTarget`, the one object the compiler and the runners take.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import host
from ..errors import EdgenasError
from .registry import Registry
from .schema import Field, load_yaml, validate

SPEC = {
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "machine": Field("str", required=True, choices=("x86_64", "aarch64")),
    "device": Field("str", required=True, choices=("cpu", "cuda")),
    "tvm": Field("map", required=True),
    "host": Field("map"),
    "cross_compiler": Field("str"),
    "toolchain_package": Field("str"),
}


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    machine: str
    device: str
    tvm: dict[str, Any]
    host: dict[str, Any] | None = None
    cross_compiler: str | None = None
    toolchain_package: str | None = None
    source: str = ""

    def summary(self) -> str:
        """A line of `edgenas targets list`."""
        return f"{self.name:<13} {self.machine:<8} {self.device:<5} {self.description}"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target with every "auto" filled in and the linker chosen for this build machine."""

    name: str
    machine: str
    device: str
    tvm: dict[str, Any]
    host: dict[str, Any] | None
    compiler: str | None = None  # None: this machine's own C compiler links the library
    notes: tuple[str, ...] = field(default=())

    def tvm_target(self):
        import tvm

        return tvm.target.Target(self.tvm, host=self.host) if self.host else tvm.target.Target(self.tvm)

    @property
    def runs_here(self) -> bool:
        """Whether a library built for this target can be loaded and timed on this machine."""
        if self.machine != host.machine():
            return False
        if self.device == "cuda":
            import tvm

            return bool(tvm.cuda(0).exist)
        return True


def load_target(path: Path) -> Target:
    data = validate(load_yaml(path), SPEC, str(path))
    if data["name"] != path.stem:
        raise EdgenasError(f"{path}: name '{data['name']}' differs from the file name; rename one so both read "
                           f"'{path.stem}'")
    if "kind" not in data["tvm"]:
        raise EdgenasError(f"{path}: tvm.kind is missing; add the TVM target kind (llvm, cuda, ...)")
    return Target(**data, source=str(path))


TARGETS: Registry[Target] = Registry("target", "targets", load_target)


def resolve(target: Target, overrides: dict[str, Any] | None = None,
            host_overrides: dict[str, Any] | None = None) -> ResolvedTarget:
    """Fill in "auto" values, apply a profile's overrides and pick the linker."""
    tvm_dict = {**target.tvm, **(overrides or {})}
    host_dict = {**target.host, **(host_overrides or {})} if target.host else None
    where = f"target '{target.name}'"
    tvm_dict = _fill_auto(tvm_dict, target.machine if target.device == "cpu" else None, where)
    if host_dict:
        host_dict = _fill_auto(host_dict, target.machine, where + " (host)")
    compiler = None
    if target.machine != host.machine():
        compiler = target.cross_compiler
        if not compiler:
            raise EdgenasError(f"{where} builds {target.machine} code but this machine is {host.machine()} and the "
                               f"target names no cross_compiler; add one to {target.source}")
        if not shutil.which(compiler):
            pkg = f" (Debian: apt-get install {target.toolchain_package}, or run ./setup.sh)" \
                if target.toolchain_package else ""
            raise EdgenasError(f"{where} needs the cross compiler '{compiler}', which is not on PATH; install it{pkg}")
    return ResolvedTarget(target.name, target.machine, target.device, tvm_dict, host_dict, compiler)


def _fill_auto(d: dict[str, Any], machine: str | None, where: str) -> dict[str, Any]:
    out = dict(d)
    autos = [k for k, v in out.items() if v == "auto"]
    if not autos:
        return out
    if out["kind"] == "cuda":
        if autos != ["arch"]:
            raise EdgenasError(f"{where}: only 'arch' can be auto for CUDA, not {', '.join(autos)}")
        out["arch"] = _cuda_arch(where)
        return out
    if machine != host.machine():
        raise EdgenasError(f"{where}: {', '.join(autos)} = auto can only be detected on a {machine} machine, this "
                           f"one is {host.machine()}; set them in the profile's target_options")
    mcpu, mattr = host.llvm_cpu()
    detected = {"mcpu": mcpu, "mattr": list(mattr), "num-cores": host.cores()}
    for key in autos:
        if key not in detected:
            raise EdgenasError(f"{where}: {key} cannot be auto; give a value")
        out[key] = detected[key]
    if not out.get("mattr"):
        out.pop("mattr", None)
    return out


def _cuda_arch(where: str) -> str:
    import tvm

    dev = tvm.cuda(0)
    if not dev.exist:
        raise EdgenasError(f"{where}: cannot detect the CUDA arch, no GPU is visible here; set target_options.arch "
                           f"in the profile (e.g. sm_86)")
    return "sm_" + dev.compute_version.replace(".", "")
