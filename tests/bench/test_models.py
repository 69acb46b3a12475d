"""`bench models` on a real network of the zoo: exported, tuned into a fresh database, compiled, timed."""
import pytest

from edgenas.errors import EdgenasError
from edgenas.measure.timing import Timing

FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=3, max_repeats=6, max_seconds=2)


@pytest.mark.slow  # tunes SqueezeNet's 28 tasks at the floor of 4 trials: ~2 min
def test_a_zoo_network_is_tuned_compiled_and_timed_against_onnxruntime(tmp_path):
    from edgenas.bench.models import bench_models, table

    result = bench_models("host", ["squeezenet1_1"], input_shape=(1, 3, 32, 32), budget_minutes=0.1, trials=4,
                          db=tmp_path / "db", timing=FAST)
    (row,) = result["models"]
    assert row["name"] == "squeezenet1_1" and row["params"] == 1_235_496
    assert row["tune"]["trials_run"] > 0 and row["tune"]["already_tuned"] == 0 and row["fallback_kernels"] == 0
    assert row["relative_error"] <= 1e-4 and set(row["runtimes"]) == {"tvm", "onnxruntime"}
    assert result["median_ratio_tvm_vs_onnxruntime"] == row["ratio_tvm_vs_onnxruntime"] > 0
    assert any(line.startswith("squeezenet1_1") for line in table(result).splitlines())
    again = bench_models("host", ["squeezenet1_1"], input_shape=(1, 3, 32, 32), budget_minutes=0.1, trials=4,
                         db=tmp_path / "db", timing=FAST)
    assert again["models"][0]["tune"]["trials_run"] == 0, "a second run reuses every record of the first"


def test_an_unknown_network_or_target_is_refused():
    from edgenas.bench.models import bench_models

    with pytest.raises(EdgenasError, match="no network resnet1000 in the zoo; known: resnet18,"):
        bench_models("host", ["resnet1000"])
    with pytest.raises(EdgenasError, match="profile 'raspi4' builds aarch64/cpu code"):
        bench_models("raspi4", ["resnet18"])
