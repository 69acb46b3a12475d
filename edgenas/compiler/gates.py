"""Channel gates folded into weights: a Relax pass that edgenas runs after ConvertLayout, before Relax's pipeline.

Squeeze-excitation ends in `conv2d(x * g, W)`: a gate `g`, one value per channel, scales the whole expanded tensor
`x` (6.4 MB at EfficientNet's 112x112x128), and the projection reads the scaled copy back. Since the convolution is
linear in its input channels, `conv2d(x * g, W) = conv2d(x, W * g)` with `g` along W's input-channel axis: the
multiply moves from the activations to the weights. This pass does that where the weights are the smaller of the
two (H*W of `x` above kh*kw*O of W: the high-resolution stages; in the last ones the weights outweigh the
activations and the multiply stays). The tensor `x * g` then never exists; the weight scaling is a small kernel of
its own (FuseOps does not fuse the gate's reshape into the convolution that computes the gate), and the projection
is the same kernel as before, so its tuning records still apply. Only at batch 1: at batch N every sample would
need weights of its own.
"""
from __future__ import annotations

from .rewrite import rewritten


def gates_folded_into_weights(mod):
    """`mod` with every `conv2d(x * g, W)` (g one value per channel of x, batch 1, W a constant, groups 1, the
    weights smaller than x) computed as `conv2d(x, W * g)`."""
    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    conv2d, multiply = tvm.ir.Op.get("relax.nn.conv2d"), tvm.ir.Op.get("relax.multiply")

    def shape(expr) -> list[int] | None:
        dims = getattr(expr.ty, "shape", None)
        if dims is None or not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
            return None
        return [int(d) for d in dims]

    @mutator
    class Fold(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op != conv2d or int(call.attrs.groups) != 1 or not isinstance(call.args[0], relax.Var):
                return call
            scaled, weights = call.args
            product = self.lookup_binding(scaled)
            if not isinstance(product, relax.Call) or product.op != multiply or \
                    not isinstance(self.lookup_binding(weights) if isinstance(weights, relax.Var) else weights,
                                   tvm.ir.expr.Constant):
                return call
            data_layout, kernel_layout = str(call.attrs.data_layout), str(call.attrs.kernel_layout)
            w_shape, channel = shape(weights), data_layout.index("C")
            for x, g in (product.args, product.args[::-1]):
                x_shape, g_shape = shape(x), shape(g)
                if None in (x_shape, g_shape, w_shape) or len(x_shape) != 4 or len(g_shape) != 4:
                    continue
                gate_like = [1] * 4
                gate_like[channel] = x_shape[channel]
                if g_shape != gate_like or x_shape[data_layout.index("N")] != 1:
                    continue
                pixels = x_shape[data_layout.index("H")] * x_shape[data_layout.index("W")]
                taps = w_shape[kernel_layout.index("H")] * w_shape[kernel_layout.index("W")]
                if pixels <= taps * w_shape[kernel_layout.index("O")]:  # the weights are the larger: keep
                    return call
                along_inputs = [1] * 4
                along_inputs[kernel_layout.index("I")] = x_shape[channel]
                gate = self.builder_.emit(relax.op.reshape(g, along_inputs))
                return relax.Call(call.op, [x, self.builder_.emit(relax.op.multiply(weights, gate))], call.attrs)
            return call

    return rewritten(mod, Fold)
