import numpy as np
import pytest
from scipy.stats import spearmanr

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
    result = bench_latency(bench, ["dev5"], supports=(0, 3, 10), seeds=2, meta_seeds=2, synthetic=False,
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


@pytest.mark.slow  # meta-trains twice: ~12 s
def test_synthetic_devices_are_seeded_unlike_the_table_and_scored_like_devices(synthetic_benchmark):
    from edgenas.bench.synthetic import RECIPES, synthetic_devices

    bench = load_benchmark(synthetic_benchmark)
    made = synthetic_devices(bench, seed=1)
    assert set(made) == {f"synthetic_{r}" for r in RECIPES}
    assert all(np.array_equal(made[n], synthetic_devices(bench, seed=1)[n]) for n in made), "seeded"
    assert all((v > 0).all() and np.isfinite(v).all() for v in made.values())
    assert max(abs(spearmanr(made[n], bench.latency[d]).statistic) for n in made for d in bench.devices) < 0.99
    result = bench_latency(bench, ["dev5"], supports=(10,), seeds=1, meta_seeds=1,
                           meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY, synthetic_seed=1)
    assert set(result["synthetic"]) == set(made) and result["synthetic_seed"] == 1
    scored = result["synthetic"]["synthetic_random_ops"]["10"]
    assert -1 <= scored["edgenas"] <= 1 and set(scored["baselines"]) >= {"linear_combination", "nearest_device"}
    assert any(line.startswith("synthetic_npu_fallback") for line in table(result).splitlines())


def test_columns_edgenas_measured_itself_are_held_out_or_meta_trained_on(synthetic_benchmark, tmp_path, capsys):
    """--store: a profile's measurements (here dev5's and dev4's latencies on 150 cells, stored as `measure` stores
    them) are devices. Held out, one is scored on the architectures it measured, the table's columns its baselines;
    in meta-training, one is a column known on 150 rows. A column of 20 architectures is left out, and said so."""
    from edgenas.cli.shell import benchmark_at
    from edgenas.store import Store

    from ..test_store import fake_measurement

    bench = load_benchmark(synthetic_benchmark)
    rows = np.random.default_rng(1).choice(len(bench.archs), 150, replace=False)
    with Store(tmp_path / "db.sqlite") as store:
        for profile, device, count in (("host", "dev5", 150), ("raspi4", "dev4", 150), ("pixel", "dev3", 20)):
            for i in rows[:count]:
                ms = bench.latency[device][i]
                store.add(profile, "nb201", bench.archs[i], (1, 3, 32, 32), {}, fake_measurement(ms))
    joined, added = benchmark_at(str(synthetic_benchmark), None, str(tmp_path / "db.sqlite"))
    assert added == ["host:tvm", "raspi4:tvm"] and joined.archs == bench.archs
    assert "pixel:tvm: 20 architectures measured; meta-training needs 100: left out" in capsys.readouterr().err
    held = bench_latency(joined, ["host:tvm"], supports=(0, 10), seeds=2, meta_seeds=1, synthetic=False,
                         meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY)
    by = held["by_support"]["10"]
    assert by["edgenas"] > 0.85 and by["edgenas"] > held["by_support"]["0"]["edgenas"]
    assert by["baselines"]["nearest_device"] > 0.5, "the table's columns, read on the 150 measured rows"
    with pytest.raises(EdgenasError, match="'host:tvm' has latencies for 150 architectures; --support takes at most"):
        bench_latency(joined, ["host:tvm"], supports=(0, 150), meta_train_devices=["dev0", "dev1"], meta_training=TINY)
    trained = bench_latency(joined, ["dev5"], supports=(0, 10), seeds=2, meta_seeds=1, synthetic=False,
                            meta_train_devices=["dev0", "dev1", "dev2", "raspi4:tvm"], meta_training=TINY)
    assert trained["meta_train_devices"][-1] == "raspi4:tvm" and trained["by_support"]["10"]["edgenas"] > 0.85
