"""Hand schedules for the kernels MetaSchedule's search does badly on, applied by `compile_onnx` and left out of
`tune`.

The global average pool (squeeze-excitation's `mean` over H and W of an NHWC tensor): a pure stream over
megabytes with one add per element. MetaSchedule's candidates for it, found with the few trials a light task
gets, ran at 2-5 GB/s (1.0 ms for 1.6 M elements; one candidate's LLVM build ran for over 7 minutes). The
hand schedule gives each thread a share of the rows and keeps a vector of partial sums per 16 channels in
registers while it streams: every element is read once, contiguously.
"""
from __future__ import annotations

VECTOR = 16  # float32 lanes of an AVX-512 register; narrower CPUs split the vector, wider ones are not seen
HAND_SCHEDULED = "edgenas hand schedule"  # what a compile report names as the source of these kernels


def is_global_mean(func) -> bool:
    """Whether the PrimFunc is TOPI's mean of a 4-D NHWC tensor over H and W (keeping them as 1s): a sum
    block reducing axes 1 and 2, then the division."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    if len(blocks) != 2 or len(func.params) != 2:
        return False
    total = sch.get(blocks[0])
    kinds = [int(v.iter_type) for v in total.iter_vars]  # 0 data-parallel, 2 reduction
    source, result = func.params  # TVM 0.27: a parameter is its buffer
    if len(source.shape) != 4 or len(result.shape) != 4 or kinds != [0, 0, 0, 0, 2, 2]:
        return False
    return [int(d) for d in result.shape][1:3] == [1, 1] and int(result.shape[3]) == int(source.shape[3])


def schedule_global_mean(func, threads: int):
    """The global-mean PrimFunc `func` scheduled by hand for `threads` threads: the rows split among them
    (rfactor), channels in vectors of `VECTOR` innermost, the partial sums in registers, then a short sum
    over the threads' partials and the division."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    total, divide = sch.get_child_blocks(sch.get_sblock("root"))
    n, one_h, one_w, c, h, w = sch.get_loops(total)
    height = int(func.params[0].shape[1])
    parts = max(1, min(threads, height))
    part, rows = sch.split(h, [parts, None])
    partial = sch.rfactor(part, factor_axis=0)  # partial[part, n, 1, 1, c]: each thread's share of the rows
    channels = int(func.params[1].shape[3])
    lanes = next(v for v in (VECTOR, 8, 4, 2, 1) if channels % v == 0)
    n, one_h, one_w, c, part, rows, w = sch.get_loops(partial)
    chunk, lane = sch.split(c, [None, lanes])
    sch.reorder(part, n, one_h, one_w, chunk, rows, w, lane)
    sch.parallel(sch.fuse(part, n))
    accumulator = sch.cache_write(partial, 0, "local")  # the vector of partial sums, held in registers
    sch.reverse_compute_at(accumulator, chunk)
    for block in (partial, accumulator):
        sch.vectorize(sch.get_loops(block)[-1])
    start = sch.decompose_reduction(partial, rows)  # zeroing the accumulator, before the rows
    sch.vectorize(sch.get_loops(start)[-1])
    sch.reverse_compute_at(divide, sch.get_loops(total)[3])  # the division per channel, as its sum is done
    return sch

