"""Channel gates folded into weights: squeeze-excitation's `conv2d(x * g, W)` becomes `conv2d(x, W * g)` where the
weights are the smaller tensor, at batch 1 only, and computes the same result."""
import numpy as np
import pytest

from edgenas.compiler.gates import gates_folded_into_weights

from .test_constants import calls


def gated_projection(batch: int, size: int, channels: int, outputs: int):
    """A Relax module `conv2d(x * sigmoid(mean(x)), W)`, NHWC/HWIO, W a constant; and W."""
    import tvm
    from tvm import relax

    weight = np.random.default_rng(0).standard_normal((1, 1, channels, outputs), dtype=np.float32)
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((batch, size, size, channels), "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            gate = builder.emit(relax.op.sigmoid(relax.op.mean(x, axis=[1, 2], keepdims=True)))
            scaled = builder.emit(relax.op.multiply(x, gate))
            w = builder.emit(relax.const(weight))
            out = builder.emit_output(relax.op.nn.conv2d(scaled, w, data_layout="NHWC", kernel_layout="HWIO"))
        builder.emit_func_output(out)
    return builder.get(), weight


def multiplies(mod) -> list[list[int]]:
    """The output shapes of the module's `multiply` calls."""
    return [[int(d) for d in call.ty.shape] for call in calls(mod, "relax.multiply")]


def run(mod, x: np.ndarray) -> np.ndarray:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_the_gate_moves_from_the_activations_to_the_weights_and_the_result_is_the_same():
    mod, weight = gated_projection(batch=1, size=8, channels=16, outputs=4)
    folded = gates_folded_into_weights(mod)
    assert multiplies(mod) == [[1, 8, 8, 16]]
    assert multiplies(folded) == [[1, 1, 16, 4]]  # the weights are scaled, the 8x8x16 activations are not
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 16), dtype=np.float32)
    gate = 1 / (1 + np.exp(-x.mean(axis=(1, 2), keepdims=True)))
    expected = np.einsum("nhwc,co->nhwo", x * gate, weight[0, 0])
    np.testing.assert_allclose(run(folded, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run(mod, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,size,outputs", [(2, 8, 4),  # every sample would need weights of its own
                                                (1, 4, 32)])  # 16 pixels, 32 outputs: the weights are larger
def test_the_gate_stays_on_the_activations(batch, size, outputs):
    mod, _ = gated_projection(batch=batch, size=size, channels=16, outputs=outputs)
    assert multiplies(gates_folded_into_weights(mod)) == [[batch, size, size, 16]]
