import numpy as np
import pytest
from scipy.stats import spearmanr

from edgenas.bench.nas import bench_nas, table
from edgenas.bench.synthetic import UNSEEN_TASK, unseen_task
from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark
from edgenas.nas.metatrain import MetaTrainConfig

from ..conftest import TINY


@pytest.mark.slow  # meta-trains and searches: ~17 s
def test_bench_nas_json_on_an_unseen_synthetic_task(synthetic_benchmark):
    """Both arms, an infeasible budget reported as a run, the transfer baseline, on a task no meta-training saw."""
    bench = load_benchmark(synthetic_benchmark)
    truth = unseen_task(bench, seed=1)
    assert np.array_equal(truth, unseen_task(bench, seed=1)) and not np.array_equal(truth, unseen_task(bench, seed=2))
    assert 0 <= np.nanmin(truth) and np.nanmax(truth) <= 47
    assert 0.5 < spearmanr(truth, bench.accuracy["cifar100"]).statistic < 0.999, "related to cifar100, yet another"
    result = bench_nas(bench, ["dev5"], ["p50", "1000", "0.001"], task=UNSEEN_TASK, task_seed=1, seeds=1,
                       meta_train_devices=[f"dev{j}" for j in range(5)], meta_training=TINY)
    assert result["task_seed"] == 1
    generator = [r for r in result["runs"] if r["arm"] == "generator"]
    assert len(generator) == 3 and result["violations"] == 0 and set(result["arms"]) == {"generator", "all_cells"}
    impossible = generator[2]
    assert impossible["pick"] is None and impossible["ratio"] == 0 and result["infeasible"] == 1
    assert "predicted to fit 0.001 ms" in impossible["infeasible"], "an infeasible budget is reported, the run goes on"
    run = generator[0]
    assert {"pick", "latency_ms", "accuracy", "oracle_accuracy", "ratio", "seconds"} <= set(run)
    assert run["oracle_accuracy"] == truth[bench.latency["dev5"] <= run["budget_ms"]].max()
    assert run["latency_queries"] <= 10 and run["accuracy_queries"] <= 10 and 0 < run["ratio"] <= 1
    everything = generator[1]
    assert everything["budget_ms"] == 1000 and everything["oracle_accuracy"] == truth.max()
    assert 0 < everything["ratio"] <= 1 and result["seeds"] == 1
    scored = [r for r in result["runs"] if r["arm"] == "all_cells"]  # the same budgets, every cell scored
    assert [r["budget_ms"] for r in scored] == [r["budget_ms"] for r in generator]
    assert scored[1]["ratio"] > 0 and scored[2]["infeasible"] and result["arms"]["all_cells"]["runs_count"] == 3
    transfer = result["baselines"]["best_source_fit"]  # the best cifar10 network of those that fit, on the task
    assert 0 < transfer <= 1
    printed = table(result).splitlines()
    assert printed[0].startswith(f"{UNSEEN_TASK} (seed 1), source task cifar10")
    assert printed[-3] == f"generator: mean ratio {result['mean_ratio']:.4f}, violations 0, infeasible 1, " \
        f"verified {result['arms']['generator']['verified']} of 3, " \
        f"{result['arms']['generator']['seconds_per_search']:.2f} s per search"
    assert printed[-2].startswith("all_cells: mean ratio")
    assert printed[-1] == "baseline best_source_fit (the most accurate on cifar10 of those that truly fit): " \
        f"mean ratio {transfer:.4f}"
    assert any("generator" in line and "infeasible: no architecture is predicted to fit 0.001 ms" in line
               for line in printed)


def test_bench_nas_refuses_a_bad_budget_before_meta_training(synthetic_benchmark):
    said = []
    with pytest.raises(EdgenasError, match="budget 'fast' is neither milliseconds nor a percentile"):
        bench_nas(load_benchmark(synthetic_benchmark), ["dev5"], ["fast"], log=said.append)
    assert not said, "nothing was meta-trained for a run that cannot start"


@pytest.fixture(scope="module")
def tiny_effnet_table(tmp_path_factory):
    """An effnet-space table in the shared format: 300 sampled architectures, four devices whose latency follows
    FLOPs and parameters differently, and an ImageNet accuracy that grows with capacity."""
    from edgenas.spaces import get_space

    sp = get_space("effnet")
    archs = sp.sample(300, seed=0)
    costs = np.array([(c.flops, c.params) for c in map(sp.costs, archs)], dtype=float)
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("effnet")
    (folder / "archs.csv").write_text("index,arch\n" + "".join(f"{i},{a}\n" for i, a in enumerate(archs)))
    lat = {f"dev{j}": (costs / [1e8, 1e6]) @ rng.uniform(0.5, 2, 2) * (1 + 0.02 * rng.standard_normal(300))
           for j in range(4)}
    (folder / "latency_ms.csv").write_text("index," + ",".join(lat) + "\n" + "".join(
        f"{i}," + ",".join(f"{v[i]:.5f}" for v in lat.values()) + "\n" for i in range(300)))
    top1 = 60 + 3 * np.log(costs[:, 0] / costs[:, 0].min()) + rng.normal(0, 0.5, 300)
    (folder / "accuracy.csv").write_text("index,imagenet_top1\n" + "".join(f"{i},{top1[i]:.3f}\n" for i in range(300)))
    return folder


@pytest.mark.slow  # meta-trains on a tiny effnet table: ~25 s
def test_bench_nas_on_effnet_judges_imagenet_with_a_capacity_prior(tiny_effnet_table):
    """The space says what is judged (imagenet_top1); the prior then cannot have learnt it: models meta-trained
    for the bench learn from the capacity proxy, and no source-task table is known in advance."""
    bench = load_benchmark(tiny_effnet_table, space="effnet")
    result = bench_nas(bench, ["dev3"], ["p50"], seeds=1, meta_train_devices=["dev0", "dev1", "dev2"],
                       meta_training=MetaTrainConfig(steps=60, episodes=200))
    assert (result["task"], result["source_task"], result["prior_task"]) == ("imagenet_top1", None, "capacity")
    assert set(result["arms"]) == {"generator"}, "a space that cannot be listed is searched from proposals only"
    assert result["violations"] == 0 and 0 < result["mean_ratio"] <= 1
    assert table(result).splitlines()[0].endswith("accuracy prior from capacity")
