"""Weights pre-packed in the order a scheduled kernel reads them: constants of anchored kernels are marked
layout-free, a tiled schedule gets MetaSchedule's layout rewrite, and the rewrite is evaluated on the constant at
compile time (in NumPy), with the same result as the kernel on the original weights."""
import numpy as np

from edgenas.compiler.prepack import mark_layout_free, prepacked, weights_in_read_order


def projection(channels: int = 32, outputs: int = 48, size: int = 4):
    """A fused Relax module `conv2d(x * c, W) + b` (1x1, NHWC/HWIO; W, b and c constants; the multiply a kernel
    of its own); and W, b, c."""
    import tvm
    from tvm import relax

    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 1, channels, outputs), dtype=np.float32)
    b = rng.standard_normal((1, 1, 1, outputs), dtype=np.float32)
    c = rng.standard_normal((1, size, size, channels), dtype=np.float32)
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, size, size, channels), "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            scaled = builder.emit(relax.op.multiply(x, relax.const(c)))
            out = builder.emit_output(relax.op.add(relax.op.nn.conv2d(scaled, relax.const(w), data_layout="NHWC",
                                                                      kernel_layout="HWIO"), relax.const(b)))
        builder.emit_func_output(out)
    with tvm.target.Target({"kind": "llvm"}):
        return relax.get_pipeline("zero")(builder.get()), (w, b, c)


def kernels(mod):
    from tvm import tirx

    return {gv.name_hint: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)}


def tiled(func):
    """A schedule of the convolution kernel `func` that reads its weights in tiles of 16 output channels of 8
    input channels, as a tuned schedule does (output channels outside, input channels inside)."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    conv = next(b for b in sch.get_child_blocks(sch.get_sblock("root")) if "conv" in sch.get(b).name_hint)
    n, h, w, o, rh, rw, rc = sch.get_loops(conv)
    o0, o1 = sch.split(o, [None, 16])
    rc0, rc1 = sch.split(rc, [None, 8])
    sch.reorder(o0, rc0, n, h, w, rh, rw, rc1, o1)
    return sch


def run(mod, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_only_the_weights_of_kernels_with_an_anchor_are_marked():
    marked = kernels(mark_layout_free(projection()[0]))
    conv = next(f for name, f in marked.items() if "conv2d" in name)
    multiply = next(f for name, f in marked.items() if "conv2d" not in name)
    assert [int(i) for i in conv.attrs["layout_free_buffers"]] == [1]  # W, which the convolution reads; not b
    # an elementwise kernel's database key hashes the whole function, attributes included: left as it was
    assert multiply.attrs.get("layout_free_buffers") is None


def test_the_weights_take_the_tiles_order_and_the_result_is_the_same():
    mod, (w, b, c) = projection()
    mod = mark_layout_free(mod)
    name, conv = next((name, f) for name, f in kernels(mod).items() if "conv2d" in name)
    sch = weights_in_read_order(tiled(conv))
    assert weights_in_read_order(sch) is sch  # a schedule that carries the rewrite is not rewritten twice
    mod[name] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    packed, renamed = prepacked(mod)
    assert renamed == {name: f"{name}_prepacked"} and not [k for k in kernels(packed) if "weight_prepack" in k]
    packed_w = kernels(packed)[renamed[name]].params[1]  # (x, W, b, out), as the kernel took them
    shape = [int(d) for d in packed_w.shape]
    assert shape != list(w.shape) and np.prod(shape) == w.size  # the same weights, packed into tiles
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 32), dtype=np.float32)
    expected = np.einsum("nhwc,co->nhwo", x * c, w[0, 0]) + b
    np.testing.assert_allclose(run(packed, x), expected, rtol=1e-5, atol=1e-5)


def test_a_kernel_without_constants_or_a_schedule_is_left_alone():
    mod = mark_layout_free(projection()[0])
    packed, renamed = prepacked(mod)  # no kernel scheduled: nothing to rewrite
    assert renamed == {} and packed.same_as(mod)
