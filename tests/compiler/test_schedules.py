"""Hand schedules: the global average pool (a mean over H and W of an NHWC tensor) is recognised, and its hand
schedule computes the same mean as numpy for every split of rows among threads and channel counts that do and
do not fill a vector."""
import numpy as np
import pytest

from edgenas.compiler.schedules import is_global_mean, schedule_global_mean


def prim_func(build):
    """The one PrimFunc of a Relax function of one NHWC input, legalised."""
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 9, 13, 40), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(build(x))
        bb.emit_func_output(y)
    mod = relax.transform.LegalizeOps()(bb.get())
    return next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))


def mean_func(shape):
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.mean(x, axis=[1, 2], keepdims=True))
        bb.emit_func_output(y)
    mod = relax.transform.LegalizeOps()(bb.get())
    return next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))


def test_only_the_mean_over_height_and_width_is_a_global_mean():
    from tvm import relax

    assert is_global_mean(mean_func((1, 9, 13, 40)))
    assert not is_global_mean(prim_func(lambda x: relax.op.mean(x, axis=[3], keepdims=True)))  # over channels
    assert not is_global_mean(prim_func(lambda x: relax.op.sum(x, axis=[1, 2], keepdims=True)))  # no division
    assert not is_global_mean(prim_func(lambda x: relax.op.mean(x, axis=[1, 2])))  # H and W dropped
    assert not is_global_mean(prim_func(lambda x: relax.op.sigmoid(x)))


@pytest.mark.parametrize("shape,threads", [((1, 112, 112, 96), 2), ((1, 9, 13, 40), 4), ((1, 7, 7, 100), 2),
                                           ((1, 1, 3, 6), 2), ((2, 5, 4, 16), 3)])
def test_the_hand_schedule_computes_the_mean(shape, threads):
    import tvm

    f = mean_func(shape).with_attr("global_symbol", "main")
    lib = tvm.tirx.build(schedule_global_mean(f, threads).mod, target=tvm.target.Target({"kind": "llvm"}))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = tvm.runtime.tensor(np.zeros((shape[0], 1, 1, shape[3]), np.float32))
    lib["main"](tvm.runtime.tensor(x), y)
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(1, 2), keepdims=True), atol=1e-6)
