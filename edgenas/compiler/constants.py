"""Weights rearranged in NumPy: a pass that edgenas runs after ConvertLayout, before Relax's own pipeline.

ConvertLayout leaves each convolution's weights behind a `permute_dims` (OIHW -> HWIO) and the frontend each bias
behind a `reshape`; Relax's FoldConstant evaluates every such call by legalising it and compiling it with LLVM, one
kernel at a time: 147 of them for an EfficientNet, 6.3 s of a 30 s compile. This pass computes those calls on
constants in NumPy instead, so FoldConstant finds nothing left to build. The constants that come out are the ones
FoldConstant would have made (same values, shape and dtype), so the kernels and their tuning keys do not change.
"""
from __future__ import annotations

import numpy as np

from .rewrite import rewritten


def rearranged_constants(mod):
    """`mod` with every `permute_dims` or `reshape` of a constant replaced by the constant it computes."""
    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    permute_dims, reshape = tvm.ir.Op.get("relax.permute_dims"), tvm.ir.Op.get("relax.reshape")

    @mutator
    class Fold(PyExprMutator):
        def value(self, expr):
            """The array of a constant, or of a variable bound to one; else None."""
            if isinstance(expr, relax.Var):
                expr = self.lookup_binding(expr)
            return expr.value.numpy() if isinstance(expr, tvm.ir.expr.Constant) else None

        def visit_call_(self, call):
            call = super().visit_call_(call)
            data = self.value(call.args[0]) if call.args else None
            if data is None:
                return call
            if call.op == permute_dims:
                axes = None if call.attrs.axes is None else [int(a) for a in call.attrs.axes]
                return relax.const(np.ascontiguousarray(np.transpose(data, axes)))
            if call.op == reshape and isinstance(call.args[1], relax.ShapeExpr) and \
                    all(isinstance(d, tvm.tirx.IntImm) for d in call.args[1].values):
                return relax.const(data.reshape([int(d) for d in call.args[1].values]))
            return call

    return rewritten(mod, Fold)
