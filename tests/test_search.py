import numpy as np
import pytest

from edgenas.bench import Oracle, bench_nas
from edgenas.benchmark import load_benchmark
from edgenas.errors import EdgenasError
from edgenas.metatrain import device_descriptors, meta_train
from edgenas.search import AccuracyModel, search


@pytest.fixture(scope="module")
def setup(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    return bench, meta_train(bench, [f"dev{j}" for j in range(5)], steps=200).model


def run(bench, model, budget, allowed=None, lq=10, aq=10):
    lat, acc = bench.latency["dev5"], bench.accuracy["cifar100"]
    return search(bench.encodings(), model, device_descriptors("dev5"), budget, Oracle(lat, lq, "dev5"), lq,
                  Oracle(acc, aq, "cifar100"), aq, source_accuracy=bench.accuracy["cifar10"], allowed=allowed)


@pytest.mark.parametrize("percentile", [25, 50, 75])
def test_the_pick_is_verified_to_fit_and_nearly_optimal(setup, percentile):
    bench, model = setup
    lat, acc = bench.latency["dev5"], bench.accuracy["cifar100"]
    budget = float(np.percentile(lat, percentile))
    result = run(bench, model, budget)  # an oracle raises on an 11th query, failing the test
    assert result.verified and lat[result.pick] <= budget
    assert acc[result.pick] / acc[lat <= budget].max() > 0.97
    assert len(result.candidates) <= 10
    assert all(c.measured_ms == lat[c.index] for c in result.candidates)


def test_memory_mask_is_a_hard_constraint(setup):
    bench, model = setup
    budget = float(np.percentile(bench.latency["dev5"], 50))
    free = run(bench, model, budget).pick
    allowed = np.ones(len(bench.archs), bool)
    allowed[free] = False
    assert run(bench, model, budget, allowed=allowed).pick != free
    with pytest.raises(EdgenasError, match="no architecture meets the memory budget"):
        run(bench, model, budget, allowed=np.zeros(len(bench.archs), bool))


def test_impossible_budget(setup):
    bench, model = setup
    with pytest.raises(EdgenasError, match="predicted to fit 0.001 ms.*raise the latency budget"):
        run(bench, model, 0.001)


def test_accuracy_model_starts_from_the_source_task_and_learns():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(300, 30)).astype(float)
    source = x[:, 0] * 5 + rng.normal(0, 1, 300)
    target = 0.8 * source + 3 * x[:, 1]  # the target task also rewards feature 1
    model = AccuracyModel(x, source)
    assert np.corrcoef(model.predict([], []), source)[0, 1] > 0.999
    picks = list(rng.choice(300, 20, replace=False))
    learned = model.predict(picks, list(target[picks]))
    assert np.corrcoef(learned, target)[0, 1] > np.corrcoef(source, target)[0, 1]


def test_predictive_uncertainty_shrinks_where_measured(setup):
    bench, model = setup
    x, lat = bench.encodings(), bench.latency["dev5"]
    picks = np.arange(10)
    _, before = model.predict(device_descriptors("dev5"), x[:0], lat[:0], x, with_std=True)
    _, after = model.predict(device_descriptors("dev5"), x[picks], lat[picks], x, with_std=True)
    assert (after > 0).all()
    assert np.median(after[picks] / after.mean()) < np.median(before[picks] / before.mean())


def test_bench_nas_json(synthetic_benchmark):
    result = bench_nas(load_benchmark(synthetic_benchmark), ["dev5"], ["p50", "1000"], seeds=2,
                       meta_train_devices=[f"dev{j}" for j in range(5)])
    assert len(result["runs"]) == 4 and result["violations"] == 0
    run = result["runs"][0]
    assert {"pick", "latency_ms", "accuracy", "oracle_accuracy", "ratio"} <= set(run)
    assert run["latency_queries"] <= 10 and run["accuracy_queries"] <= 10
    assert result["mean_ratio"] == pytest.approx(np.mean([r["ratio"] for r in result["runs"]]))
    with pytest.raises(EdgenasError, match="budget 'fast' is neither milliseconds nor a percentile"):
        bench_nas(load_benchmark(synthetic_benchmark), ["dev5"], ["fast"])
