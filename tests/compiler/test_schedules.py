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


def product_func(k: int, n: int, rows: int = 1):
    """The PrimFunc of a classifier: x (rows x k) times a k x n weight constant, plus a bias, fused."""
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((rows, k), "float32"))
    w = relax.const(np.ones((k, n), np.float32))
    b = relax.const(np.ones(n, np.float32))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.add(relax.op.matmul(x, w), b))
        bb.emit_func_output(y)
    mod = tvm.ir.transform.Sequential([relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
                                       relax.transform.FuseOps(), relax.transform.FuseTIR()])(bb.get())
    fused = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(fused) == 1 and len(fused[0].params) == 4, "the product and its bias, one kernel"
    return fused[0]


def test_a_batch_1_classifier_is_a_vector_matrix_product_and_its_hand_schedule_computes_it():
    import tvm

    from edgenas.compiler.schedules import hand_schedule, is_hand_scheduled, is_vector_matrix_product

    assert is_vector_matrix_product(product_func(1280, 1000)) and is_hand_scheduled(product_func(64, 10))
    assert not is_vector_matrix_product(product_func(64, 10, rows=4)), "a batch of rows is a matrix product"
    assert not is_vector_matrix_product(mean_func((1, 9, 13, 40)))
    rng = np.random.default_rng(1)
    for k, n, threads in ((1280, 1000, 2), (37, 10, 4), (3, 5, 8)):
        f = product_func(k, n).with_attr("global_symbol", "main")
        lib = tvm.tirx.build(hand_schedule(f, threads).mod, target=tvm.target.Target({"kind": "llvm"}))
        x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, k), (k, n), (n,)))
        y = tvm.runtime.tensor(np.zeros((1, n), np.float32))
        lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(w), tvm.runtime.tensor(b), y)
        np.testing.assert_allclose(y.numpy(), x @ w + b, rtol=1e-5, atol=1e-4)
