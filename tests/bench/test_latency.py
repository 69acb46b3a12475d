import pytest

from edgenas.bench.harness import Oracle
from edgenas.bench.latency import bench_latency, table
from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark

from ..conftest import TINY


def test_oracle_refuses_the_query_after_its_budget():
    oracle = Oracle([1.0, 2.0, 3.0, 4.0], budget=2, name="dev")
    assert oracle(0) == 1.0 and oracle(3) == 4.0
    assert oracle(0) == 1.0, "asking again for a known answer is free"
    with pytest.raises(EdgenasError, match="oracle for dev: query 3 refused; the budget is 2"):
        oracle(1)


def test_a_k_sweep_over_meta_training_seeds_with_every_baseline(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    said = []
    result = bench_latency(bench, ["dev5"], supports=(0, 3, 10), seeds=2, meta_seeds=2,
                           meta_train_devices=[f"dev{j}" for j in range(6)], meta_training=TINY, log=said.append)
    assert sum("meta-training on 5 devices without dev5" in m for m in said) == 2, "one per meta-training seed"
    assert result["split"] == "given" and result["meta_seeds"] == 2 and result["supports"] == [0, 3, 10]
    by = result["by_support"]
    assert by["10"]["edgenas"] > 0.85 and by["10"]["edgenas"] > by["0"]["edgenas"], "measurements sharpen it"
    assert by["10"]["devices"]["dev5"]["edgenas"] == by["10"]["edgenas"] and by["10"]["edgenas_std"] >= 0
    assert set(by["10"]["baselines"]) == {"flops", "ridge_onehot", "linear_combination", "nearest_device"}
    assert by["0"]["baselines"]["ridge_onehot"] is None
    assert by["0"]["baselines"]["flops"] == by["10"]["baselines"]["flops"], "FLOPs need no support set"
    assert by["10"]["baselines"]["nearest_device"] > 0.5 and by["10"]["linear_combination_alpha"] > 0
    printed = table(result).splitlines()
    assert [line.split()[0] for line in printed[2:5]] == ["0", "3", "10"] and "-" in printed[2]


def test_by_default_the_reference_splits_validation_devices_are_held_out(synthetic_benchmark):
    with pytest.raises(EdgenasError, match="device 'titanx_1' is not a column"):  # NB201's split, not this table's
        bench_latency(load_benchmark(synthetic_benchmark))


def test_bench_latency_unknown_device(synthetic_benchmark):
    with pytest.raises(EdgenasError, match="device 'dev7' is not a column"):
        bench_latency(load_benchmark(synthetic_benchmark), ["dev7"])
