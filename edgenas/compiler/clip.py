"""Clip as Relax operators: a pass that edgenas runs on the imported module before ConvertLayout.

TVM's ONNX frontend imports `Clip` (a ReLU6 among them) as two opaque TE kernels, `call_tir(maximum, (x, low))`
and `call_tir(minimum, (., high))`, which Relax's ConvertLayout cannot move into the convolutions' NHWC layout:
every ReLU6 of a MobileNetV2 became transpose -> max -> min -> transpose in a kernel of its own, and the
convolution before it lost its fused epilogue (MobileNetV2 at 224x224 ran 3.4x slower than onnxruntime). This
pass turns each such call with a scalar bound into Relax's elementwise `maximum` / `minimum`, which follow the
layout and fuse into the convolution.
"""
from __future__ import annotations

import re

from .rewrite import rewritten

BOUND_KERNEL = re.compile(r"(maximum|minimum)\d*")  # the names emit_te gives topi.maximum / topi.minimum kernels


def clips_as_relax_ops(mod):
    """`mod` with every `call_tir` of a TE maximum or minimum against a scalar as Relax's `maximum` / `minimum`."""
    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    call_tir = tvm.ir.Op.get("relax.call_tir")

    @mutator
    class Rewrite(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op != call_tir or not isinstance(call.args[0], relax.GlobalVar):
                return call
            found = BOUND_KERNEL.fullmatch(call.args[0].name_hint)
            args = call.args[1].fields if isinstance(call.args[1], relax.Tuple) else []
            if not found or len(args) != 2 or getattr(args[1].ty, "ndim", None) != 0:
                return call
            return getattr(relax.op, found.group(1))(args[0], args[1])

    return rewritten(mod, Rewrite)
