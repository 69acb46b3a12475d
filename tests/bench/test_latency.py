import pytest

from edgenas.bench.harness import Oracle
from edgenas.bench.latency import bench_latency
from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark

from ..conftest import TINY


def test_oracle_refuses_the_query_after_its_budget():
    oracle = Oracle([1.0, 2.0, 3.0, 4.0], budget=2, name="dev")
    assert oracle(0) == 1.0 and oracle(3) == 4.0
    assert oracle(0) == 1.0, "asking again for a known answer is free"
    with pytest.raises(EdgenasError, match="oracle for dev: query 3 refused; the budget is 2"):
        oracle(1)


def test_bench_latency_holds_devices_out_of_meta_training(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    said = []
    result = bench_latency(bench, ["dev5"], support=10, seeds=2,
                           meta_train_devices=[f"dev{j}" for j in range(6)], meta_training=TINY,
                           log=said.append)
    entry = result["devices"]["dev5"]
    assert "dev5" not in entry["meta_train_devices"] and len(entry["meta_train_devices"]) == 5
    assert any("meta-training on 5 devices without dev5" in m for m in said)
    assert result["mean_spearman"] == entry["spearman"] > 0.85
    assert set(entry["baselines"]) == {"flops", "ridge_onehot", "linear_combination"}
    assert len(entry["per_seed"]) == 2


def test_bench_latency_unknown_device(synthetic_benchmark):
    with pytest.raises(EdgenasError, match="device 'dev7' is not a column"):
        bench_latency(load_benchmark(synthetic_benchmark), ["dev7"])
