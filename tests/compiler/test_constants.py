"""Weights rearranged in NumPy before Relax's pipeline: the same constants and the same kernels as FoldConstant's,
without compiling a kernel per weight."""
import numpy as np

from edgenas.compiler.compile import kernel_keys, lower
from edgenas.compiler.constants import rearranged_constants
from edgenas.compiler.export import export_onnx
from edgenas.compiler.tune import randomize_batch_norms
from edgenas.device.profile import PROFILES

from ..conftest import ARCH


def calls(mod, name: str) -> list:
    import tvm
    from tvm import relax

    op = tvm.ir.Op.get(name)
    return [b.value for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and b.value.op == op]


def test_transposes_and_reshapes_of_constants_become_constants():
    import tvm
    from tvm import relax

    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((8, 4, 3, 3), dtype=np.float32), rng.standard_normal(8, dtype=np.float32)
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 3, 4), "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            w = builder.emit(relax.op.permute_dims(relax.const(weight), [2, 3, 1, 0]))  # OIHW -> HWIO
            b = builder.emit(relax.op.reshape(builder.emit(relax.const(bias)), (1, 1, 1, 8)))  # through a binding
            y = builder.emit(relax.op.nn.conv2d(x, w, data_layout="NHWC", kernel_layout="HWIO"))
            z = builder.emit(relax.op.add(y, b))
            out = builder.emit_output(relax.op.permute_dims(z, [0, 3, 1, 2]))  # of a tensor: stays
        builder.emit_func_output(out)
    folded = rearranged_constants(builder.get())
    assert len(calls(folded, "relax.permute_dims")) == 1 and not calls(folded, "relax.reshape")
    bound = {b.var: b.value for block in folded["main"].body.blocks for b in block.bindings}
    (conv,), (add,) = calls(folded, "relax.nn.conv2d"), calls(folded, "relax.add")
    w, b = bound[conv.args[1]], bound[add.args[1]]
    assert isinstance(w, tvm.ir.expr.Constant) and isinstance(b, tvm.ir.expr.Constant)
    assert np.array_equal(w.value.numpy(), weight.transpose(2, 3, 1, 0))
    assert np.array_equal(b.value.numpy(), bias.reshape(1, 1, 1, 8))


def test_a_lowered_network_has_the_same_kernels_and_weights_as_without_it(small, tmp_path, monkeypatch):
    import tvm
    import tvm_ffi
    from tvm import tirx

    import edgenas.compiler.compile as compile_module

    exported = export_onnx(randomize_batch_norms(small.build(ARCH)), small.input_shape, tmp_path / "m.onnx")
    target = PROFILES.get("host").resolved_target()
    fast = lower(exported.path, target)
    monkeypatch.setattr(compile_module, "rearranged_constants", lambda mod: mod)
    plain = lower(exported.path, target)

    def kernels(mod):
        return sorted(str(tvm_ffi.structural_hash(f.without_attr("global_symbol")))
                      for f in mod.functions.values() if isinstance(f, tirx.PrimFunc))

    def weights(mod):
        return [a.value.numpy() for call in calls(mod, "relax.call_tir") for a in call.args[1].fields
                if isinstance(a, tvm.ir.expr.Constant)]

    assert kernels(fast) == kernels(plain) and kernel_keys(fast) == kernel_keys(plain)
    assert len(weights(fast)) == len(weights(plain)) > 0
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(weights(fast), weights(plain)))
