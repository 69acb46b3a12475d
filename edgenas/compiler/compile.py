"""ONNX -> TVM Relax -> a shared library for a resolved target, exported with `export_library`.

CPU targets get their convolutions in NHWC layout with HWIO weights (the weights are constants, so their
transposition happens once, at compile time): the innermost loop then runs over output channels, contiguous in
both the output and the weights, and vectorises across the full SIMD width even where the image is small (8x8
in NB201's last stage, where NCHW's innermost loop over 8 pixels filled half an AVX-512 register and tuned
schedules ran 2.5x slower). Then Relax's default pipeline (legalisation, fusion, TIR lowering) for LLVM, plus
the fusion of elementwise prologues (fusion.py) and, on CPUs, a vectorisable sigmoid (fastmath.py); where the
target has a tuning database (`tuning_db.py`), its MetaSchedule schedules replace the default ones of every
kernel they match, and the library records which kernels were tuned and which fell back. On CPUs the global
average pools and the batch-1 classifiers (vector-matrix products) are scheduled by hand (schedules.py), whatever
the database holds. Clips (ReLU6) become Relax operators first, so they follow the layout and fuse (clip.py); an
int8 (QDQ) model's convolutions and matrix products become integer kernels (int8.py). CUDA targets get DLight's
default GPU schedules for kernels without tuned ones. Weights are transposed and reshaped in NumPy before Relax's
pipeline, which would compile a kernel for each (constants.py), and squeeze-excitation's gate scales the weights of
the convolution after it instead of its input, where the weights are the smaller (gates.py). On CPUs each scheduled
kernel's constant weights are stored in the order its loops read them, computed once at compile time (prepack.py).
Libraries for another instruction set are linked with the target's cross compiler, so an aarch64 target yields a
real ARM ELF.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import onnx

from ..device.target import ResolvedTarget
from ..errors import EdgenasError
from .clip import clips_as_relax_ops
from .constants import rearranged_constants
from .fastmath import fast_sigmoid
from .fusion import fuse_elementwise_prologues
from .gates import gates_folded_into_weights
from .int8 import integer_kernels
from .prepack import mark_layout_free, prepacked, weights_in_read_order
from .schedules import HAND_SCHEDULED, hand_schedule
from .tuning_db import check_given, databases_for, open_fastest, workload_key

CPU_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "HWIO"]}  # pools and elementwise kernels follow their input
REPLAY_TOP_K = 4  # records of a workload tried, fastest first, until one replays (the 1st or 2nd, over 333 kernels)


@dataclass(frozen=True)
class KernelSignature:
    """A compiled kernel as the per-kernel profile calls it: its name, how often one inference calls it, and the
    shape and dtype of each buffer it takes (inputs, then outputs)."""

    name: str
    calls: int
    buffers: tuple[tuple[tuple[int, ...], str], ...]


@dataclass(frozen=True)
class CompiledLibrary:
    path: Path
    target: ResolvedTarget
    kernels: tuple[str, ...]  # the TIR functions of the compiled module
    modules: tuple[str, ...]  # kinds of the code modules in the library, e.g. ("llvm", "cuda")
    seconds: float
    tuned: tuple[str, ...] = ()  # kernels scheduled from the tuning database, or by hand (schedules.py)
    fallback: tuple[str, ...] = ()  # kernels with the default (untuned) schedule
    tuning_db: Path | None = None  # the first database drawn from, if any
    schedule_from: tuple[tuple[str, str], ...] = ()  # (tuned kernel, its schedule's database or HAND_SCHEDULED)
    signatures: tuple[KernelSignature, ...] = ()  # each kernel's calls per inference and buffers, in run order


def lower(onnx_path: str | Path, target: ResolvedTarget):
    """The fused Relax module of the ONNX model: what `compile_onnx` builds and what `tune` extracts its
    tasks from, so that a tuned workload and a compiled kernel are the same TIR."""
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(onnx_path))
    try:
        mod = from_onnx(model, keep_params_in_input=False)
    except Exception as e:  # the frontend raises many types; all mean "this graph cannot be imported"
        raise EdgenasError(f"TVM cannot import {onnx_path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if any(node.op_type == "DequantizeLinear" for node in model.graph.node):  # an int8 (QDQ) model
        mod = integer_kernels(mod)
    if target.device == "cpu":
        mod = fast_sigmoid(relax.transform.ConvertLayout(CPU_LAYOUTS)(clips_as_relax_ops(mod)))
    mod = gates_folded_into_weights(rearranged_constants(mod))
    with target.tvm_target():
        mod = fuse_elementwise_prologues(relax.get_pipeline("zero")(mod))
    return _drop_custom_rules(mod)


def compile_onnx(onnx_path: str | Path, target: ResolvedTarget, out_path: str | Path,
                 tuning_db: str | Path | None = None) -> CompiledLibrary:
    """Compile the ONNX model at `onnx_path` for `target` and write the library to `out_path`, each kernel with
    its schedule from the first of `tuning_db.databases_for(target, tuning_db)` that has its workload."""
    import tvm
    from tvm import tirx

    start = time.perf_counter()
    mod = lower(onnx_path, target)
    if target.device == "cpu":  # marked here, not in `lower`: tune searches without it (see prepack.py)
        mod = mark_layout_free(mod)
    check_given(tuning_db)
    paths = databases_for(target, tuning_db)
    keys = kernel_keys(mod) if paths else set()
    # each database is opened (its records replayed) when a kernel first needs it: most networks need one
    databases = [(str(p), functools.cache(functools.partial(open_fastest, p, REPLAY_TOP_K, keys))) for p in paths]
    tvm_target = target.tvm_target()
    sources: dict[str, str] = {}
    with tvm_target:
        if target.device == "cpu":
            threads = int(target.tvm.get("num-cores") or 4)  # cores unknown: 4 shares

            def by_hand(func):
                sch = hand_schedule(func, threads)
                return None if sch is None else (sch, HAND_SCHEDULED)

            mod, sources = _schedule_kernels(mod, by_hand)
        if databases:
            mod, tuned = _apply_databases(mod, databases, tvm_target)
            sources.update(tuned)
        if target.device == "cuda":
            from tvm.s_tir import dlight as dl

            mod = dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                          dl.gpu.GeneralReduction(), dl.gpu.Fallback())(mod)
        else:
            mod, renamed = prepacked(mod)
            sources = {renamed.get(name, name): source for name, source in sources.items()}
    kernels = tuple(sorted(gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)))
    signatures = _signatures(mod)
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
                           tuple(sorted(sources)), tuple(k for k in kernels if k not in sources),
                           paths[0] if paths else None, tuple(sorted(sources.items())), signatures)


def _signatures(mod) -> tuple[KernelSignature, ...]:
    """The kernels `main` calls (call_tir and its in-place form), in the order of their first call, with their
    call counts and buffer shapes. Kernels with symbolic shapes cannot be called alone and are left out."""
    import tvm
    from tvm import relax, tirx

    calls: dict[str, int] = {}
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and \
                    value.op.name.startswith("relax.call_tir") and isinstance(value.args[0], relax.GlobalVar):
                calls[value.args[0].name_hint] = calls.get(value.args[0].name_hint, 0) + 1
    out = []
    for name, count in calls.items():
        func = mod[name]
        if not isinstance(func, tirx.PrimFunc):
            continue
        try:
            buffers = tuple((tuple(int(d) for d in p.shape), str(p.dtype)) for p in func.params)
        except (TypeError, AttributeError):  # a symbolic dimension, or a scalar parameter
            continue
        out.append(KernelSignature(name, count, buffers))
    return tuple(out)


def kernel_keys(mod) -> set[str]:
    """The database keys of the module's kernels (`workload_key`), as MetaSchedule normalises a kernel."""
    from tvm import tirx
    from tvm.s_tir.meta_schedule.tune_context import _normalize_mod

    return {workload_key(_normalize_mod(f)) for f in mod.functions.values() if isinstance(f, tirx.PrimFunc)}


def _apply_databases(mod, databases: list[tuple[str, Callable]], tvm_target):
    """Replace each kernel's default schedule by the best one for its workload in the first of `databases`
    (name, a function that opens the database) that has one that applies; return the module and, per tuned
    kernel, the name of the database its schedule came from. A database matches a kernel by its anchor block
    (e.g. the convolution), so a record tuned with one fused epilogue is replayed on another. A kernel on which
    none of its workload's best records replays keeps its default schedule, as does a kernel with no record
    (MetaScheduleApplyDatabase would fail the whole module instead)."""
    from tvm.s_tir.meta_schedule.tune_context import _normalize_mod

    def from_databases(func):
        one = _normalize_mod(func)
        for name, opened in databases:
            database = opened()
            sch = _replayed(one, database, tvm_target) if database.has_workload(one) else None
            if sch is not None:
                return sch, name
        return None

    return _schedule_kernels(mod, from_databases)


def _schedule_kernels(mod, schedule):
    """Replace the default schedule of each kernel not yet scheduled for which `schedule(func)` gives one, as
    (the schedule, the name of its source); return the module and, per kernel so scheduled, that name."""
    from tvm import tirx

    sources = {}
    for gv, func in list(mod.functions.items()):
        if not isinstance(func, tirx.PrimFunc) or (func.attrs and func.attrs.get("tirx.is_scheduled")):
            continue
        found = schedule(func)
        if found is not None:
            sch, sources[gv.name_hint] = found
            sch = weights_in_read_order(sch)
            new = sch.mod["main"].with_attr("tirx.is_scheduled", True)
            symbol = func.attrs.get("global_symbol") if func.attrs else None
            mod[gv] = new.with_attr("global_symbol", symbol) if symbol else new.without_attr("global_symbol")
    return mod, sources


def _replayed(one, database, tvm_target):
    """The schedule of the kernel module `one` by the fastest of its workload's records in `database` that
    replays on it, or None."""
    from tvm import s_tir

    for record in database.get_top_k(database.commit_workload(one), REPLAY_TOP_K):  # fastest first
        for replay in (_replay_trace, _replay_on_anchor):  # the same blocks; or the anchor, the rest inlined
            try:
                return replay(s_tir.Schedule(one), record.trace, tvm_target)
            except Exception:  # noqa: BLE001  (TVM's error when a trace does not replay on this kernel)
                continue
    return None


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
