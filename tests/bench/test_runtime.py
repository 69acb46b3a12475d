"""The runtime benchmark on real runtimes: one NB201 network through TVM, onnxruntime and PyTorch eager."""
import pytest

from edgenas import mobile
from edgenas.errors import EdgenasError
from edgenas.measure.timing import Timing

from ..conftest import ARCH

FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=3, max_repeats=6, max_seconds=2)


@pytest.mark.slow  # times four runtimes interleaved: ~30 s
def test_one_architecture_through_every_runtime(nb201):
    from edgenas.bench.runtime import bench_runtime, table

    said = []
    result = bench_runtime("host", [ARCH], timing=FAST, log=said.append)
    (row,) = result["archs"]
    assert row["arch"] == nb201.canonical(ARCH) and row["mflops"] > 0
    lite = {"litert"} if mobile.available() else set()
    assert set(row["runtimes"]) == {"tvm", "onnxruntime", "pytorch"} | lite
    for name, r in row["runtimes"].items():
        assert r["repeats"] >= FAST.min_repeats and 0 < r["p50_ms"] <= r["p90_ms"]
        assert r["max_abs_error_vs_pytorch"] <= 1e-4 * 10, f"{name} computes the network PyTorch computes"
    assert row["runtimes"]["onnxruntime"]["ratio_vs_onnxruntime"] == 1.0
    assert row["runtimes"]["pytorch"]["max_abs_error_vs_pytorch"] == 0.0
    assert result["median_ratio_tvm_vs_onnxruntime"] == row["runtimes"]["tvm"]["ratio_vs_onnxruntime"]
    assert row["tuned_kernels"] + row["fallback_kernels"] > 10
    assert result["threads"] >= 1 and len(said) == 1
    # The printed table: one line per architecture, unstable medians marked.
    printed = table(result).splitlines()
    assert [line for line in printed if line.endswith(row["arch"])]
    summary = [line for line in printed if line.startswith("median ratio tvm/onnxruntime")]
    assert summary and ("litert/onnxruntime" in summary[0]) == bool(lite)
    assert (printed[-1] == mobile.MISSING) == (not lite)
    row["runtimes"]["pytorch"].update(stable=False, spread=0.4)
    assert " 40.0%! x" in table(result) and "the machine was busy" in table(result)


def test_architectures_of_different_cost(nb201):
    from edgenas.bench.runtime import spread_by_flops

    archs = spread_by_flops(nb201, 5)
    flops = [nb201.costs(a).flops for a in archs]
    assert len(set(archs)) == 5 and flops == sorted(flops) and flops[-1] > 3 * flops[0]
    assert not any(nb201.is_degenerate(a) for a in archs)


def test_architectures_of_different_cost_in_a_space_too_large_to_list():
    from edgenas.bench.runtime import spread_by_flops
    from edgenas.spaces import get_space

    effnet = get_space("effnet")  # its enumerate() raises
    archs = spread_by_flops(effnet, 4, seed=1)
    flops = [effnet.costs(a).flops for a in archs]
    assert len(set(archs)) == 4 and flops == sorted(flops) and flops[-1] > 2 * flops[0]
    assert spread_by_flops(effnet, 4, seed=1) == archs


def test_a_target_that_cannot_run_here_is_refused():
    from edgenas.bench.runtime import bench_runtime

    with pytest.raises(EdgenasError, match="cannot run on this machine.*--target host"):
        bench_runtime("raspi4", [ARCH], timing=FAST)
