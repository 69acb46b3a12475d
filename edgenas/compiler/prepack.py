"""Weights pre-packed in the order a scheduled kernel reads them: MetaSchedule's layout rewrite, applied at
compile time to every scheduled CPU kernel, with the rewritten weights computed once, when the library is built.

A tuned convolution's tiling reads its weights in tiles (e.g. 16 output channels of 15 input channels at a time);
in HWIO order such a tile is 15 strided rows, and in a whole inference the weights come from DRAM (19.6 MB of them
per EfficientNet inference, far more than the caches hold). MetaSchedule's `RewriteLayout` postprocessor gives a
buffer marked layout-free (here: the weights of each convolution or matrix product, `mark_layout_free`) the layout
in which the kernel's loops read it, as a transformation block ahead of the kernel. `SplitLayoutRewritePreproc`
moves that block into a function of its own, called on the constant, and the call is evaluated into a new constant
here. The postprocessor needs only the finished schedule, not a new search, so the records of a database get the
rewrite at compile time. `tune` searches without it: with the weights marked, MetaSchedule's builder failed on
some candidates' layout rewrites (an int8 convolution's: RemoveWeightLayoutRewriteBlock's check that the rewrite
reads its weights at plain variables), and one failure ends the whole run. (A record tuned with the weights marked
would carry the rewrite in its trace and is not rewritten twice.)
Measured on effnet's 7x7 1x1 convolution 1920 -> 320, the shipped record, 2 threads (hot / caches flushed):
276 / 509 us as tuned, 241 / 344 us with the weights rewritten.
"""
from __future__ import annotations

import numpy as np

from .rewrite import rewritten

PREPROC = "meta_schedule.layout_rewrite_preproc"  # the annotation of RewriteLayout's transformation block


def mark_layout_free(mod):
    """`mod` with each kernel that has an anchor block (a convolution, a matrix product) marked with the constants
    that block reads (its weights; every call must pass a constant there) as its `layout_free_buffers`. Relax's
    AttachAttrLayoutFreeBuffers marks every constant (biases and scales, which the epilogue reads in order anyway)
    and renames every kernel. Kernels without an anchor are left unmarked: the database files them under a hash of
    the whole function, attributes included, and their records would no longer be found."""
    import tvm
    from tvm import relax, tirx
    from tvm.s_tir.analysis import find_anchor_sblock

    call_tir = tvm.ir.Op.get("relax.call_tir")
    constant: dict = {}  # kernel -> positions of the arguments that are constants in every call
    for func in (f for f in mod.functions.values() if isinstance(f, relax.Function)):
        for binding in (b for block in func.body.blocks for b in block.bindings):
            call = binding.value
            if isinstance(call, relax.Call) and call.op == call_tir:
                args = call.args[1].fields
                here = {i for i, a in enumerate(args) if isinstance(a, tvm.ir.expr.Constant)}
                constant[call.args[0]] = constant.get(call.args[0], here) & here
    marked = mod.clone()
    for gv, positions in constant.items():
        func = mod[gv]
        anchor = find_anchor_sblock(tvm.IRModule({"main": func})) if isinstance(func, tirx.PrimFunc) else None
        read = {region.source.name for region in anchor.reads} if anchor is not None else set()
        weights = sorted(i for i in positions if func.params[i].name in read)  # TVM 0.27: a parameter is its buffer
        if weights:
            marked[gv] = func.with_attr("layout_free_buffers", weights)
    return marked


def weights_in_read_order(sch):
    """The schedule `sch` with its layout-free buffers rewritten to the order its loops read them, or `sch` as it
    is where it has none, already carries the rewrite, or the postprocessor does not apply or puts the rewrite
    anywhere but ahead of the kernel."""
    from tvm.s_tir import meta_schedule as ms

    func = sch.mod["main"]
    if not (func.attrs and func.attrs.get("layout_free_buffers")) or _preprocs(sch):
        return sch
    rewritten = sch.copy()
    if not ms.postproc.RewriteLayout().apply(rewritten):
        return sch
    # SplitLayoutRewritePreproc takes rewrites ahead of the kernel only (in some tuned int8 kernels the rewrite
    # lands inside a loop nest with other blocks)
    roots = rewritten.get_child_blocks(rewritten.get_sblock("root"))
    ahead = sum(PREPROC in rewritten.get(b).annotations for b in roots)
    return rewritten if ahead == _preprocs(rewritten) else sch


def prepacked(mod):
    """`mod` with each layout rewrite moved out of its kernel and evaluated on its constant weights; and the new
    name of each kernel so split (`SplitLayoutRewritePreproc` calls the kernel `<name>_prepacked` and the
    rewrite `<name>_weight_prepack`). The rewrites are evaluated in NumPy, where each of the function's blocks
    copies a constant to the index its layout map gives (all of them, so far); Relax's FoldConstant, which compiles
    each function with LLVM to run it once (4 s for an EfficientNet's 74), evaluates any other."""
    import tvm
    from tvm import relax, tirx
    from tvm.relax.expr_functor import PyExprMutator, mutator

    split = relax.transform.SplitLayoutRewritePreproc()(mod)
    rewrites = {gv: func for gv, func in split.functions_items()
                if isinstance(func, tirx.PrimFunc) and gv.name_hint.endswith("_weight_prepack")}
    if not rewrites:  # the pass renames kernels even where it splits none
        return mod, {}
    renamed = {gv.name_hint: f"{gv.name_hint}_prepacked" for gv in mod.get_global_vars()
               if f"{gv.name_hint}_prepacked" in split}
    call_tir = tvm.ir.Op.get("relax.call_tir")

    @mutator
    class Evaluate(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            args = call.args[1].fields if call.op == call_tir and call.args[0] in rewrites else ()
            if not args or not all(isinstance(a, tvm.ir.expr.Constant) for a in args):
                return call
            out = call.ty_args[0]
            outs = out.fields if isinstance(out, relax.TupleType) else [out]
            arrays = [a.value.numpy() for a in args]
            arrays += [np.empty([int(d) for d in o.shape], str(o.dtype)) for o in outs]
            if not _copies_evaluated(rewrites[call.args[0]], arrays):
                return call
            consts = [relax.const(r) for r in arrays[len(args):]]
            return relax.Tuple(consts) if isinstance(out, relax.TupleType) else consts[0]

    mod = relax.transform.CanonicalizeBindings()(rewritten(split, Evaluate))
    return relax.transform.DeadCodeElimination()(relax.transform.FoldConstant()(mod)), renamed


def _copies_evaluated(func, arrays) -> bool:
    """Run the layout rewrite `func` on `arrays` (its parameters' values, outputs last) in NumPy, where each of
    its blocks is a copy `dst[f(v)] = src[v]` over all of `src`, its indices `f` integer arithmetic of `v`;
    whether it was."""
    import tvm
    from tvm import s_tir, tirx

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    position = {param.name: i for i, param in enumerate(func.params)}  # TVM 0.27: a parameter is its buffer
    for block in (sch.get(b) for b in sch.get_child_blocks(sch.get_sblock("root"))):
        store, variables = block.body, [iv.var for iv in block.iter_vars]
        if not isinstance(store, tirx.BufferStore) or not isinstance(store.value, tvm.ir.TensorLoad) or \
                [str(i) for i in store.value.indices] != [str(v) for v in variables]:
            return False
        src, dst = arrays[position[store.value.source.name]], arrays[position[store.buffer.name]]
        if [int(iv.dom.extent) for iv in block.iter_vars] != list(src.shape):
            return False
        grid = dict(zip(variables, np.indices(src.shape)))
        try:
            dst[tuple(_evaluated(i, grid) for i in store.indices)] = src
        except (KeyError, AttributeError):  # arithmetic other than + - * // %
            return False
    return True


def _evaluated(expr, grid):
    """The integer expression `expr` of TIR variables, evaluated on the NumPy index arrays `grid` gives them."""
    from tvm import tirx

    if isinstance(expr, tirx.Var):
        return grid[expr]
    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    operation = {tirx.Add: np.add, tirx.Sub: np.subtract, tirx.Mul: np.multiply, tirx.FloorDiv: np.floor_divide,
                 tirx.FloorMod: np.mod}[type(expr)]
    return operation(_evaluated(expr.a, grid), _evaluated(expr.b, grid))


def _preprocs(sch) -> int:
    """How many blocks the schedule's trace annotated as layout rewrites."""
    return sum(inst.kind.name == "Annotate" and str(inst.attrs[0]) == PREPROC for inst in sch.trace.insts)
