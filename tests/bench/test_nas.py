import numpy as np
import pytest
from scipy.stats import spearmanr

from edgenas.bench.nas import bench_nas, table
from edgenas.bench.synthetic import UNSEEN_TASK, unseen_task
from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark

from ..conftest import TINY


def test_bench_nas_json(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    result = bench_nas(bench, ["dev5"], ["p50", "1000", "0.001"], seeds=1,
                       meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY)
    generator = [r for r in result["runs"] if r["arm"] == "generator"]
    assert len(generator) == 3 and result["violations"] == 0 and set(result["arms"]) == {"generator", "all_cells"}
    impossible = generator[2]
    assert impossible["pick"] is None and impossible["ratio"] == 0 and result["infeasible"] == 1
    assert "predicted to fit 0.001 ms" in impossible["infeasible"], "an infeasible budget is reported, the run goes on"
    run = generator[0]
    assert {"pick", "latency_ms", "accuracy", "oracle_accuracy", "ratio"} <= set(run)
    assert run["latency_queries"] <= 10 and run["accuracy_queries"] <= 10
    everything = generator[1]
    assert everything["budget_ms"] == 1000 and everything["oracle_accuracy"] == bench.accuracy["cifar100"].max()
    assert 0 < everything["ratio"] <= 1 and result["seeds"] == 1
    scored = [r for r in result["runs"] if r["arm"] == "all_cells"]  # the same budgets, every cell scored
    assert [r["budget_ms"] for r in scored] == [r["budget_ms"] for r in generator]
    assert scored[1]["ratio"] > 0 and scored[2]["infeasible"] and result["arms"]["all_cells"]["runs_count"] == 3
    printed = table(result).splitlines()
    assert printed[-2] == f"generator: mean ratio {result['mean_ratio']:.4f}, violations 0, infeasible 1, " \
        f"verified {result['arms']['generator']['verified']} of 3, " \
        f"{result['arms']['generator']['seconds_per_search']:.2f} s per search"
    assert printed[-1].startswith("all_cells: mean ratio")
    assert any("generator" in line and "infeasible: no architecture is predicted to fit 0.001 ms" in line
               for line in printed)


def test_bench_nas_on_an_unseen_synthetic_task(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    truth = unseen_task(bench, seed=1)
    assert np.array_equal(truth, unseen_task(bench, seed=1)) and not np.array_equal(truth, unseen_task(bench, seed=2))
    assert 0 <= np.nanmin(truth) and np.nanmax(truth) <= 47
    rho = spearmanr(truth, bench.accuracy["cifar100"]).statistic
    assert 0.5 < rho < 0.999, "related to cifar100, yet another task"
    result = bench_nas(bench, ["dev5"], ["p50"], task=UNSEEN_TASK, task_seed=1, seeds=1,
                       meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY)
    run = result["runs"][0]
    assert result["task_seed"] == 1 and run["oracle_accuracy"] == truth[bench.latency["dev5"] <= run["budget_ms"]].max()
    assert 0 < run["ratio"] <= 1 and table(result).startswith(f"{UNSEEN_TASK} (seed 1), source task cifar10")


def test_bench_nas_refuses_a_bad_budget_before_meta_training(synthetic_benchmark):
    said = []
    with pytest.raises(EdgenasError, match="budget 'fast' is neither milliseconds nor a percentile"):
        bench_nas(load_benchmark(synthetic_benchmark), ["dev5"], ["fast"], log=said.append)
    assert not said, "nothing was meta-trained for a run that cannot start"
