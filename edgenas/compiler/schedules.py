"""Hand schedules for the kernels MetaSchedule's search does badly on, applied by `compile_onnx` (`hand_schedule`)
and left out of `tune` (`is_hand_scheduled`).

The global average pool (squeeze-excitation's `mean` over H and W of an NHWC tensor): a pure stream over
megabytes with one add per element. MetaSchedule's candidates for it, found with the few trials a light task
gets, ran at 2-5 GB/s (1.0 ms for 1.6 M elements; one candidate's LLVM build ran for over 7 minutes). The
hand schedule gives each thread a share of the rows and a row of partial sums, one per channel, that stays in the
L1 cache while the thread streams its rows pixel by pixel: every element is read once, in memory order. (Summing
16 channels at a time over all rows instead reads the tensor as C/16 strided streams: 2.6x slower at 112x112x128.)

The vector-matrix product (a classifier at batch 1: 1 x K times K x N, e.g. effnet's 1280 x 1000, 5 MB of
weights read once per inference): memory-bound, and in a whole inference its weights come from DRAM, not from the
caches MetaSchedule measured them in (its tuned schedule: 136 us with the weights cached, 442 us with them
flushed, on one core). By hand, each thread streams a contiguous share of the weight rows into a row of partial
sums, vectorised along it, and the partials are added at the end: 76 / 184 us on one core.
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
    (rfactor), each thread adding its pixels, one after another, into a row of partial sums (vectorised over
    channels in `VECTOR`s), then a short sum over the threads' partials and the division."""
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
    sch.reorder(part, n, one_h, one_w, rows, w, chunk, lane)  # every pixel's channels in turn: one stream
    fused = sch.fuse(part, n)
    sch.parallel(fused)
    accumulator = sch.cache_write(partial, 0, "local")  # the thread's row of partial sums, one per channel
    sch.reverse_compute_at(accumulator, fused)
    for block in (partial, accumulator):
        sch.vectorize(sch.get_loops(block)[-1])
    start = sch.decompose_reduction(partial, rows)  # zeroing the accumulator, before the rows
    sch.vectorize(sch.get_loops(start)[-1])
    sch.reverse_compute_at(divide, sch.get_loops(total)[3])  # the division per channel, as its sum is done
    return sch


def is_vector_matrix_product(func) -> bool:
    """Whether the PrimFunc is a 1 x K by K x N matrix product (then any elementwise epilogue): its first block
    reduces over K, reading the first two parameters."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    product = sch.get(sch.get_child_blocks(sch.get_sblock("root"))[0])
    if len(func.params) < 3 or [int(v.iter_type) for v in product.iter_vars] != [0, 0, 2]:
        return False
    vector, matrix = func.params[:2]
    if len(vector.shape) != 2 or len(matrix.shape) != 2 or int(vector.shape[0]) != 1:
        return False
    reads = [r.source for r in product.reads]  # TVM 0.27: a read region's source is the parameter itself
    return int(vector.shape[1]) == int(matrix.shape[0]) and len(reads) == 2 and \
        reads[0].same_as(vector) and reads[1].same_as(matrix)


def schedule_vector_matrix_product(func, threads: int):
    """The vector-matrix product `func` scheduled by hand for `threads` threads: the K rows of the matrix split
    among them (rfactor), each thread streaming its rows into a row of N partial sums, vectorised along N; then
    the sum of the threads' partials and the epilogue."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    product = sch.get_child_blocks(sch.get_sblock("root"))[0]
    _, _, k = sch.get_loops(product)
    depth, width = (int(d) for d in func.params[1].shape)
    part, rows = sch.split(k, [max(1, min(threads, depth)), None])
    partial = sch.rfactor(part, factor_axis=0)  # partial[part, 0, n]: each thread's share of the rows
    i, n, part, rows = sch.get_loops(partial)
    lanes = next(v for v in (VECTOR, 8, 4, 2, 1) if width % v == 0)
    sch.reorder(part, i, rows, n)  # a thread's rows one after another, each read contiguously along N
    sch.parallel(part)
    sch.vectorize(sch.split(n, [None, lanes])[1])
    start = sch.decompose_reduction(partial, rows)  # zeroing the partial sums, before the rows
    sch.vectorize(sch.split(sch.get_loops(start)[-1], [None, lanes])[1])
    return sch


HAND = ((is_global_mean, schedule_global_mean), (is_vector_matrix_product, schedule_vector_matrix_product))


def is_hand_scheduled(func) -> bool:
    """Whether `compile_onnx` schedules the PrimFunc by hand on CPUs (then `tune` leaves it out)."""
    return any(recognise(func) for recognise, _ in HAND)


def hand_schedule(func, threads: int):
    """The hand schedule of the PrimFunc for `threads` threads, or None where it has none."""
    return next((schedule(func, threads) for recognise, schedule in HAND if recognise(func)), None)

