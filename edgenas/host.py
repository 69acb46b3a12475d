"""What this machine is: CPU model and features, cores, clock, caches, memory, and LLVM's mcpu/mattr for it.

Read from the operating system (/proc, /sys) and from TVM's LLVM, never assumed. The features LLVM
infers from a CPU *name* can differ from what a virtual machine really exposes, so `llvm_cpu()` returns
the name plus explicit +/- attributes for every SIMD feature where the two disagree.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from pathlib import Path

# /proc/cpuinfo flag -> LLVM feature, for the x86 SIMD features that decide code generation.
X86_SIMD_FLAGS = {
    "sse4_1": "sse4.1", "sse4_2": "sse4.2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512cd": "avx512cd", "avx512bw": "avx512bw", "avx512dq": "avx512dq",
    "avx512vl": "avx512vl", "avx512ifma": "avx512ifma", "avx512vbmi": "avx512vbmi",
    "avx512_vbmi2": "avx512vbmi2", "avx512_vnni": "avx512vnni", "avx512_bitalg": "avx512bitalg",
    "avx512_vpopcntdq": "avx512vpopcntdq", "avx512_bf16": "avx512bf16", "avx512_fp16": "avx512fp16",
    "avx_vnni": "avxvnni", "amx_tile": "amx-tile", "amx_int8": "amx-int8", "amx_bf16": "amx-bf16",
}


def machine() -> str:
    """The instruction set of this machine as edgenas names it (x86_64, aarch64)."""
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@functools.cache
def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    return info


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Hardware") or info.get("CPU part") or platform.processor() or "unknown"


def cpu_flags() -> frozenset[str]:
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def clock_ghz() -> float | None:
    """Maximum clock from cpufreq, else the current clock /proc/cpuinfo reports."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
    except (OSError, ValueError):
        mhz = _cpuinfo().get("cpu MHz")
        return round(float(mhz) / 1000, 3) if mhz else None


def memory_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cache_kb() -> dict[str, float]:
    """Per-core L1 data and L2, and the largest shared last-level cache, in KB, from sysfs."""
    out: dict[str, float] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        kb = float(size[:-1]) * (1024 if size.endswith("M") else 1) if size[-1] in "KM" else float(size) / 1024
        if kind == "Instruction":
            continue
        name = {"1": "l1d_kb", "2": "l2_kb", "3": "l3_kb"}.get(level)
        if name:
            out[name] = kb
    return out


def simd_bits() -> int | None:
    flags = cpu_flags()
    if "avx512f" in flags:
        return 512
    if "avx2" in flags or "avx" in flags:
        return 256
    if flags & {"sse2", "asimd", "neon"}:
        return 128
    return None


@functools.cache
def llvm_cpu() -> tuple[str, tuple[str, ...]]:
    """(mcpu, mattr) for this machine: LLVM's host CPU name, corrected by the features the OS reports."""
    import tvm
    from tvm.target import codegen

    mcpu = str(codegen.llvm_get_system_cpu())
    if machine() != "x86_64":
        return mcpu, ()
    with tvm.target.Target({"kind": "llvm", "mcpu": mcpu}):
        implied = {str(f) for f in codegen.llvm_get_cpu_features()}
    flags = cpu_flags()
    mattr = []
    for flag, feature in X86_SIMD_FLAGS.items():
        if flag in flags and feature not in implied:
            mattr.append("+" + feature)
        elif flag not in flags and feature in implied:
            mattr.append("-" + feature)
    return mcpu, tuple(mattr)


def descriptors() -> dict[str, float]:
    """The numeric hardware descriptors of a profile, measured on this machine (missing ones left out)."""
    found: dict[str, float | None] = {"cores": cores(), "clock_ghz": clock_ghz(), "memory_mb": memory_mb(),
                                      "simd_bits": simd_bits(), **cache_kb()}
    bits, ghz = found["simd_bits"], found["clock_ghz"]
    if bits and ghz:  # one fused multiply-add vector unit per core: 2 FLOPs per float32 lane per cycle
        found["peak_gflops"] = round(found["cores"] * ghz * (bits // 32) * 2, 1)
    return {k: v for k, v in found.items() if v is not None}


@functools.cache
def fingerprint() -> tuple[str, dict]:
    """A short hash identifying this machine's hardware, and the facts it was made from."""
    facts = {"machine": machine(), "cpu": cpu_model(), "cores": cores(), "memory_mb": memory_mb(),
             "simd": sorted(f for f in cpu_flags() if f in X86_SIMD_FLAGS or f in ("asimd", "neon", "sve")),
             "system": platform.system()}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return digest, facts
