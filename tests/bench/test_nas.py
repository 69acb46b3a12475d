import pytest

from edgenas.bench.nas import bench_nas, table
from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark

from ..conftest import TINY


def test_bench_nas_json(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    result = bench_nas(bench, ["dev5"], ["p50", "1000", "0.001"], seeds=1,
                       meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY)
    assert len(result["runs"]) == 3 and result["violations"] == 0
    impossible = result["runs"][2]
    assert impossible["pick"] is None and impossible["ratio"] == 0 and result["infeasible"] == 1
    assert "predicted to fit 0.001 ms" in impossible["infeasible"], "an infeasible budget is reported, the run goes on"
    run = result["runs"][0]
    assert {"pick", "latency_ms", "accuracy", "oracle_accuracy", "ratio"} <= set(run)
    assert run["latency_queries"] <= 10 and run["accuracy_queries"] <= 10
    everything = result["runs"][1]
    assert everything["budget_ms"] == 1000 and everything["oracle_accuracy"] == bench.accuracy["cifar100"].max()
    assert 0 < everything["ratio"] <= 1 and result["seeds"] == 1
    printed = table(result).splitlines()
    assert printed[-1] == f"mean ratio {result['mean_ratio']:.4f}, violations 0, infeasible 1 of 3"
    assert "infeasible: no architecture is predicted to fit 0.001 ms" in printed[-2]


def test_bench_nas_refuses_a_bad_budget_before_meta_training(synthetic_benchmark):
    said = []
    with pytest.raises(EdgenasError, match="budget 'fast' is neither milliseconds nor a percentile"):
        bench_nas(load_benchmark(synthetic_benchmark), ["dev5"], ["fast"], log=said.append)
    assert not said, "nothing was meta-trained for a run that cannot start"
