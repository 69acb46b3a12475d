"""Prologue fusion: a Relax pass that edgenas adds after TVM's fusion, so unary elementwise kernels (the
ReLU before every NB201 convolution) stop being kernels of their own.

TVM's FuseOps only fuses elementwise work *after* a convolution (epilogues). In a NAS cell the ReLU sits
*before* the convolutions, and its input (a node of the cell) is also read raw by skips and pools, so it
stays a separate kernel: a third of a cell's kernel launches do nothing but `max(x, 0)`. This pass copies
each such unary elementwise producer into every kernel that reads its output and lets FuseTIR merge the pair
into one PrimFunc; the producer then has no reader left and is dropped. The producer's block is then inlined
into its reader (the convolution's padding stage, where it is recomputed for free), so the fused kernel has
the same blocks as the convolution alone and the convolution's tuning records replay on it unchanged.
"""
from __future__ import annotations


def fuse_elementwise_prologues(mod):
    """The module with every unary elementwise kernel (TIR op pattern kElemWise, one input) fused into each
    kernel that reads it."""
    import tvm
    from tvm import relax, tirx
    from tvm.relax.expr_functor import PyExprMutator, mutator

    call_tir = tvm.ir.Op.get("relax.call_tir")

    def unary_elementwise(gv) -> bool:
        func = mod[gv] if isinstance(gv, relax.GlobalVar) and gv in mod.functions else None
        return (isinstance(func, tirx.PrimFunc) and len(func.params) == 2 and func.attrs is not None
                and int(func.attrs.get("op_pattern", -1)) == 0)

    @mutator
    class Prologues(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op != call_tir or not isinstance(call.args[1], relax.Tuple):
                return call
            producers = [self._producer(a) for a in call.args[1].fields]
            if all(p is None for p in producers):
                return call
            params, outer = [], []
            for arg, producer in zip(call.args[1].fields, producers):
                source = arg if producer is None else producer.args[1].fields[0]
                params.append(relax.Var(f"p{len(params)}", source.ty))
                outer.append(source)
            bb = relax.BlockBuilder()
            kernel = call.args[0]
            prologue = "_".join(p.args[0].name_hint for p in producers if p is not None)
            name = f"fused_{prologue}_{kernel.name_hint.removeprefix('fused_')}"
            with bb.function(name, params, {"Primitive": True}, private=True):
                with bb.dataflow():
                    inner = [bb.emit(relax.call_tir(p.args[0], [param], p.ty_args[0])) if p is not None else param
                             for p, param in zip(producers, params)]
                    out = bb.emit_output(relax.call_tir(kernel, inner, call.ty_args[0]))
                bb.emit_func_output(out)
            gv = self.builder_.add_func(bb.get()[name], name)
            fused[gv.name_hint] = sum(p is not None for p in producers)  # add_func reuses equal functions
            return relax.Call(gv, outer)

        def _producer(self, arg):
            """The call_tir of a unary elementwise kernel that binds `arg`, if it is one."""
            if not isinstance(arg, relax.Var):
                return None
            bound = self.lookup_binding(arg)
            if isinstance(bound, relax.Call) and bound.op == call_tir and unary_elementwise(bound.args[0]):
                return bound
            return None

    fused: dict[str, int] = {}  # function -> number of prologue kernels fused into it
    rewriter = Prologues(mod)
    main = rewriter.visit_expr(mod["main"])
    mod = rewriter.builder_.get()
    mod["main"] = main
    mod = relax.transform.FuseTIR()(mod)
    mod = relax.transform.DeadCodeElimination(["main"])(mod)
    for name, count in fused.items():
        mod = _inline_leading_blocks(mod, name, count)
    return mod


def _inline_leading_blocks(mod, name: str, count: int):
    """Inline the first `count` blocks of PrimFunc `name` (FuseTIR puts the prologues' blocks first) into
    the blocks that read them."""
    import tvm
    from tvm import s_tir

    gv = mod.get_global_var(name)
    sch = s_tir.Schedule(tvm.IRModule({"main": mod[gv]}))
    for block in list(sch.get_child_blocks(sch.get_sblock("root")))[:count]:
        sch.compute_inline(block)
    mod[gv] = sch.mod["main"]
    return mod
