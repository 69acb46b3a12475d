import shutil

import numpy as np
import pytest

from edgenas.errors import EdgenasError
from edgenas.nas.benchmark import load_benchmark

from ..conftest import SHARED_NB201


@pytest.mark.skipif(not SHARED_NB201.is_dir(), reason="needs ../shared/benchmarks/nb201")
def test_loads_the_shared_nb201_tables():
    bench = load_benchmark(SHARED_NB201)
    assert len(bench.archs) == 15625 == len(set(bench.archs))
    assert len(bench.devices) == 13 and "pixel3" in bench.devices
    assert bench.tasks == ["cifar10", "cifar100"]
    assert all(np.isfinite(v).all() for v in bench.latency.values())


def test_any_device_and_task_columns(synthetic_benchmark):
    bench = load_benchmark(synthetic_benchmark)
    assert bench.devices == [f"dev{j}" for j in range(6)] and bench.tasks == ["cifar10", "cifar100"]
    assert bench.encodings().shape == (800, 30)


def broken(folder, tmp_path, name, edit):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    path = copy / name
    path.write_text(edit(path.read_text()))
    return copy


@pytest.mark.parametrize("name, edit, message", [
    ("archs.csv", lambda t: t.replace("|+|", "|-|", 1), "archs.csv: index 0: arch"),
    ("latency_ms.csv", lambda t: t.replace("\n0,", "\n0,fast", 1), "index 0, column dev0: 'fast"),
    ("latency_ms.csv", lambda t: "\n".join(t.splitlines()[:-1]) + "\n", "no row for index 799"),
    ("latency_ms.csv", lambda t: t + t.splitlines()[1] + "\n", "appears twice"),
    ("accuracy.csv", lambda t: t.replace("index,", "id,", 1), "the first column must be 'index'"),
])
def test_bad_tables_get_one_line_errors(synthetic_benchmark, tmp_path, name, edit, message):
    with pytest.raises(EdgenasError) as e:
        load_benchmark(broken(synthetic_benchmark, tmp_path, name, edit))
    assert message in str(e.value) and name in str(e.value) and "\n" not in str(e.value)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(EdgenasError, match="does not exist; pass the folder"):
        load_benchmark(tmp_path / "nope")
    with pytest.raises(EdgenasError, match="archs.csv is missing"):
        load_benchmark(tmp_path)


def test_columns_edgenas_measured_join_the_table_and_add_its_missing_architectures(synthetic_benchmark):
    from edgenas.spaces import get_space

    bench = load_benchmark(synthetic_benchmark)
    outside = next(a for a in map(get_space("nb201").from_index, range(100)) if a not in bench.archs)
    joined = bench.with_columns({"host:tvm": {bench.archs[3]: 2.5, outside: 4.0}})
    assert joined.archs == bench.archs + [outside] and joined.devices == [*bench.devices, "host:tvm"]
    assert joined.latency["host:tvm"][3] == 2.5 and joined.latency["host:tvm"][-1] == 4.0
    assert np.isfinite(joined.latency["host:tvm"]).sum() == 2
    assert np.isnan(joined.latency["dev0"][-1]) and np.isnan(joined.accuracy["cifar10"][-1])
    assert joined.latency["dev0"][:-1].tolist() == bench.latency["dev0"].tolist()
    with pytest.raises(EdgenasError, match="column 'dev0' is already a column of .*latency_ms.csv"):
        bench.with_columns({"dev0": {bench.archs[0]: 1.0}})
