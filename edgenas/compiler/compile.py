"""ONNX -> TVM Relax -> a shared library for a resolved target, exported with `export_library`.

CPU targets get their convolutions in NHWC layout with HWIO weights (the weights are constants, so their
transposition happens once, at compile time): the innermost loop then runs over output channels, contiguous in
both the output and the weights, and vectorises across the full SIMD width even where the image is small (8x8
in NB201's last stage, where NCHW's innermost loop over 8 pixels filled half an AVX-512 register and tuned
schedules ran 2.5x slower). Then Relax's default pipeline (legalisation, fusion, TIR lowering) for LLVM, plus
the fusion of elementwise prologues (fusion.py); where the target has a tuning database (`tuning_db.py`), its
MetaSchedule schedules replace the default ones of every kernel they match, and the library records which
kernels were tuned and which fell back. CUDA
targets get DLight's default GPU schedules for kernels without tuned ones. Libraries for another
instruction set are linked with the target's cross compiler, so an aarch64 target yields a real ARM ELF.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..device.target import ResolvedTarget
from ..errors import EdgenasError
from .fusion import fuse_elementwise_prologues
from .tuning_db import default_database, open_fastest

CPU_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "HWIO"]}  # pools and elementwise kernels follow their input
REPLAY_TOP_K = 4  # records of a workload tried, fastest first, until one replays (the 1st or 2nd, over 333 kernels)


@dataclass(frozen=True)
class CompiledLibrary:
    path: Path
    target: ResolvedTarget
    kernels: tuple[str, ...]  # the TIR functions of the compiled module
    modules: tuple[str, ...]  # kinds of the code modules in the library, e.g. ("llvm", "cuda")
    seconds: float
    tuned: tuple[str, ...] = ()  # kernels scheduled from the tuning database
    fallback: tuple[str, ...] = ()  # kernels with the default (untuned) schedule
    tuning_db: Path | None = None  # the database used, if any


def lower(onnx_path: str | Path, target: ResolvedTarget):
    """The fused Relax module of the ONNX model: what `compile_onnx` builds and what `tune` extracts its
    tasks from, so that a tuned workload and a compiled kernel are the same TIR."""
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    try:
        mod = from_onnx(onnx.load(str(onnx_path)), keep_params_in_input=False)
    except Exception as e:  # the frontend raises many types; all mean "this graph cannot be imported"
        raise EdgenasError(f"TVM cannot import {onnx_path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if target.device == "cpu":
        mod = relax.transform.ConvertLayout(CPU_LAYOUTS)(mod)
    with target.tvm_target():
        mod = fuse_elementwise_prologues(relax.get_pipeline("zero")(mod))
    return _drop_custom_rules(mod)


def compile_onnx(onnx_path: str | Path, target: ResolvedTarget, out_path: str | Path,
                 tuning_db: str | Path | None = None) -> CompiledLibrary:
    """Compile the ONNX model at `onnx_path` for `target` and write the library to `out_path`, with the
    schedules of `tuning_db` (default: `tuning_db.default_database`)."""
    import tvm
    from tvm import tirx

    start = time.perf_counter()
    mod = lower(onnx_path, target)
    db_path = Path(tuning_db) if tuning_db else default_database(target)
    if tuning_db and not db_path.is_dir():
        raise EdgenasError(f"tuning database {db_path} does not exist; run edgenas tune --db {db_path} first, "
                           f"or leave --tuning-db out")
    database = open_fastest(db_path, REPLAY_TOP_K) if db_path else None
    tvm_target = target.tvm_target()
    tuned: tuple[str, ...] = ()
    with tvm_target:
        if database is not None:
            mod, tuned = _apply_database(mod, database, tvm_target)
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
    return CompiledLibrary(out_path, target, kernels, _module_kinds(executable.mod), time.perf_counter() - start,
                           tuned, tuple(k for k in kernels if k not in tuned),
                           db_path if database is not None else None)


def _apply_database(mod, database, tvm_target):
    """Replace each kernel's default schedule by the best one in `database` for its workload, where there is
    one that applies; return the module and the names of the tuned kernels. The database matches a kernel by
    its anchor block (e.g. the convolution), so a record tuned with one fused epilogue is replayed on
    another. A kernel on which none of its workload's best records replays keeps its default schedule, as
    does a kernel with no record (MetaScheduleApplyDatabase would fail the whole module instead)."""
    from tvm import s_tir, tirx
    from tvm.s_tir.meta_schedule.tune_context import _normalize_mod

    tuned = []
    for gv, func in list(mod.functions.items()):
        if not isinstance(func, tirx.PrimFunc) or (func.attrs and func.attrs.get("tirx.is_scheduled")):
            continue
        one = _normalize_mod(func)
        if not database.has_workload(one):
            continue
        sch = None
        for record in database.get_top_k(database.commit_workload(one), REPLAY_TOP_K):  # fastest first
            for replay in (_replay_trace, _replay_on_anchor):  # the same blocks; or the anchor, the rest inlined
                try:
                    sch = replay(s_tir.Schedule(one), record.trace, tvm_target)
                    break
                except Exception:  # noqa: BLE001  (TVM's error when a trace does not replay on this kernel)
                    continue
            if sch is not None:
                break
        if sch is None:
            continue
        new = sch.mod["main"].with_attr("tirx.is_scheduled", True)
        symbol = func.attrs.get("global_symbol") if func.attrs else None
        mod[gv] = new.with_attr("global_symbol", symbol) if symbol else new.without_attr("global_symbol")
        tuned.append(gv.name_hint)
    return mod, tuple(sorted(tuned))


def _replay_trace(sch, trace, _target):
    trace.apply_to_schedule(sch, remove_postproc=False)
    return sch


def _replay_on_anchor(sch, trace, target):
    from tvm.s_tir.meta_schedule.trace_apply import schedule_using_anchor_trace

    schedule_using_anchor_trace(sch, trace, target)
    return sch


def _drop_custom_rules(mod):
    """Remove TOPI's `schedule_rule` block annotations (e.g. meta_schedule.pool_avg): TVM ships no such rule
    for CPUs, so MetaSchedule warns on every candidate and then uses its default rules anyway."""
    import tvm
    from tvm import s_tir, tirx

    for gv, func in list(mod.functions.items()):
        if not isinstance(func, tirx.PrimFunc):
            continue
        sch = s_tir.Schedule(tvm.IRModule({"main": func}))
        marked = [b for b in blocks(sch, sch.get_sblock("root")) if "schedule_rule" in sch.get(b).annotations]
        if marked:
            for b in marked:
                sch.unannotate(b, "schedule_rule")
            mod[gv] = sch.mod["main"]
    return mod


def blocks(sch, parent):
    for block in sch.get_child_blocks(parent):
        yield block
        yield from blocks(sch, block)


def _module_kinds(module) -> tuple[str, ...]:
    kinds = []
    for sub in module.imports:
        kinds += [sub.kind, *_module_kinds(sub)]
    return tuple(kinds)
