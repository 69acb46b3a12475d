"""ONNX -> TVM Relax -> a shared library for a resolved target, exported with `export_library`.

CPU targets go through Relax's default pipeline (legalisation, fusion, TIR lowering) for LLVM; CUDA targets
get DLight's default GPU schedules first. Libraries for another instruction set are linked with the
target's cross compiler, so an aarch64 target yields a real ARM ELF.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import onnx

from .errors import EdgenasError
from .target import ResolvedTarget


@dataclass(frozen=True)
class CompiledLibrary:
    path: Path
    target: ResolvedTarget
    kernels: tuple[str, ...]  # the TIR functions of the compiled module
    modules: tuple[str, ...]  # kinds of the code modules in the library, e.g. ("llvm", "cuda")
    seconds: float


def compile_onnx(onnx_path: str | Path, target: ResolvedTarget, out_path: str | Path) -> CompiledLibrary:
    """Compile the ONNX model at `onnx_path` for `target` and write the library to `out_path`."""
    import tvm
    from tvm import relax, tirx
    from tvm.relax.frontend.onnx import from_onnx

    start = time.perf_counter()
    try:
        mod = from_onnx(onnx.load(str(onnx_path)), keep_params_in_input=False)
    except Exception as e:  # the frontend raises many types; all mean "this graph cannot be imported"
        raise EdgenasError(f"TVM cannot import {onnx_path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    tvm_target = target.tvm_target()
    with tvm_target:
        mod = relax.get_pipeline("zero")(mod)
        if target.device == "cuda":
            from tvm.s_tir import dlight as dl

            mod = dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                          dl.gpu.GeneralReduction(), dl.gpu.Fallback())(mod)
    kernels = tuple(sorted(gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)))
    executable = tvm.compile(mod, target=tvm_target)
    out_path = Path(out_path)
    fcompile = None
    if target.compiler:
        from tvm.support import cc

        fcompile = cc.cross_compiler(target.compiler)
    try:
        executable.export_library(str(out_path), fcompile=fcompile)
    except OSError as e:
        raise EdgenasError(f"cannot write {out_path} ({e.strerror}); choose a writable output directory") from None
    return CompiledLibrary(out_path, target, kernels, _module_kinds(executable.mod), time.perf_counter() - start)


def _module_kinds(module) -> tuple[str, ...]:
    kinds = []
    for sub in module.imports:
        kinds += [sub.kind, *_module_kinds(sub)]
    return tuple(kinds)
