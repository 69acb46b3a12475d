"""The whole path through the real command line: `edgenas compile` and `edgenas measure` on this machine."""
import json
import sqlite3
import subprocess
import sys

import pytest

from edgenas.artifact.manifest import sha256
from edgenas.artifact.report import summary
from edgenas.compiler.schedules import HAND_SCHEDULED
from edgenas.errors import EdgenasError

from ..conftest import ARCH, ARCH_DEGENERATE

ARCH_CHEAP = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def edgenas(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "edgenas", *args], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("artifact")
    out, db = tmp / "host", tmp / "store.sqlite"
    result = edgenas("compile", "--target", "host", "--arch", ARCH, "-o", str(out), "--db", str(db), "--json",
                     "--memory-mb", "0.5", check=False)  # a budget the network breaks: written, and exit 1
    assert result.returncode == 1 and result.stderr.splitlines()[-1].startswith(
        "over budget: memory 0.5 MB: MISSED (weights + peak activations "), result.stderr
    phases = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert phases.index("export") < phases.index("compile") < phases.index("measure"), "each phase said as it starts"
    return out, db, json.loads(result.stdout)


def test_compile_writes_a_complete_artifact(artifact):
    out, _, report = artifact
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.so", "model.h", "manifest.json", "report.json",
                                            "report.html", "report.png"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arch"] == ARCH and manifest["profile"] == "host"
    assert manifest["inputs"] == [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert manifest["outputs"] == [{"name": "logits", "shape": [1, 10], "dtype": "float32"}]
    assert manifest["target"]["tvm"]["kind"] == "llvm" and manifest["target"]["tvm"]["mcpu"]
    for name, digest in manifest["files"].items():
        assert sha256(out / name) == digest
    assert set(manifest["versions"]) >= {"edgenas", "tvm", "onnx", "onnxruntime", "torch"}
    assert json.loads((out / "report.json").read_text()) == report
    printed = summary(report, out).splitlines()
    assert printed[0] == f"artifact   {out}/  (manifest.json, model.h, model.onnx, model.so, report.html, " \
        "report.json, report.png)"
    assert any(line.startswith("budget     memory 0.5 MB: MISSED") for line in printed)


def test_report_has_costs_and_both_latencies(artifact):
    _, _, report = artifact
    assert report["costs"]["params"] == 802426
    assert report["measured"]
    for runtime in ("tvm", "onnxruntime"):
        s = report["latency_ms"][runtime]
        assert 0 < s["min_ms"] <= s["p50_ms"] <= s["p90_ms"]
        assert s["max_abs_error_vs_pytorch"] <= 1e-4
    assert report["tvm_vs_onnxruntime"] == pytest.approx(
        report["latency_ms"]["tvm"]["p50_ms"] / report["latency_ms"]["onnxruntime"]["p50_ms"], rel=1e-3)
    compiled = report["compile"]  # no tuning database in tests: only the classifier and its pool are scheduled
    hand = compiled["schedule_from"]
    assert compiled["tuning_db"] is None and set(hand.values()) == {HAND_SCHEDULED} and len(hand) == 2
    assert "mean" in hand and any(k.startswith("fused_matmul_add") for k in hand), hand
    assert compiled["kernels"] == len(compiled["fallback"]) + 2 and compiled["tuned"] == sorted(hand)
    profiled = report["kernels"]["by_kernel"]  # every kernel timed alone, with its calls per inference
    assert len(profiled) == compiled["kernels"] and sum(k["calls"] for k in profiled) > len(profiled), \
        "NB201's cells call some kernels more than once"


def test_every_measurement_is_in_the_store(artifact):
    _, db, report = artifact
    rows = sqlite3.connect(db).execute("SELECT id, runtime, profile, arch, p50_ms FROM measurements").fetchall()
    assert sorted(r[1] for r in rows) == ["onnxruntime", "tvm"]
    by_id = {r[0]: r for r in rows}
    for runtime in ("tvm", "onnxruntime"):
        row = by_id[report["latency_ms"][runtime]["store_id"]]
        assert row[1:4] == (runtime, "host", ARCH)
        assert row[4] == pytest.approx(report["latency_ms"][runtime]["p50_ms"])


@pytest.mark.slow  # an aarch64 cross-compile through the CLI: ~23 s
def test_predict_only_profile_compiles_without_measuring(tmp_path):
    result = edgenas("compile", "-t", "raspi4", "-a", ARCH_CHEAP, "-o", str(tmp_path / "pi"),
                     "--db", str(tmp_path / "db.sqlite"))
    assert "not measured: profile 'raspi4' has measure.via: none" in result.stdout
    report = json.loads((tmp_path / "pi" / "report.json").read_text())
    assert not report["measured"] and report["latency_ms"] == {}


def test_measure_records_each_runtime_and_a_rerun_skips_what_is_stored(tmp_path):
    db = tmp_path / "db.sqlite"
    archs = tmp_path / "archs.csv"
    archs.write_text(f"index,arch\n7,{ARCH_CHEAP}\n")
    run = json.loads(edgenas("measure", "-t", "host", "--archs", str(archs), "--db", str(db), "--json").stdout)
    assert [r["arch"] for r in run["rows"]] == [ARCH_CHEAP] and run["skipped"] == [] and run["fleet"] is None
    assert run["rows"][0]["tvm"]["device"] == "local"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 2
    again = edgenas("measure", "-t", "host", "-a", ARCH_CHEAP, "--db", str(db))
    assert "measured 0 in" in again.stdout and "1 already stored" in again.stdout
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 2


def test_rpc_profile_is_measured_on_the_tracker_device_and_stored(tmp_path, rpc_tracker):
    from edgenas.device.profile import load_profile
    from edgenas.pipeline.compile import compile_artifact
    from edgenas.store import Store

    path = tmp_path / "board.yaml"
    path.write_text("name: board\ndescription: this machine behind a tracker\nkind: cpu\ntarget: native\n"
                    f"batch: 1\nmeasure: {{via: rpc, tracker: '{rpc_tracker}', key: loopback}}\n")
    art = compile_artifact(load_profile(path), ARCH_CHEAP, tmp_path / "out", db=tmp_path / "db.sqlite")
    tvm = art.report["latency_ms"]["tvm"]
    assert set(art.report["latency_ms"]) == {"tvm"}, "onnxruntime on this machine says nothing about the device"
    assert tvm["where"] == f"rpc {rpc_tracker} key loopback" and tvm["max_abs_error_vs_pytorch"] <= 1e-4
    with Store(tmp_path / "db.sqlite") as store:
        (record,) = store.records(profile="board")
    assert (record.id, record.runtime, record.arch) == (tvm["store_id"], "tvm", ARCH_CHEAP)


@pytest.mark.slow  # generates, builds and measures six candidates on this machine: ~2 min
def test_generation_regenerates_after_a_measured_miss(nb201, tmp_path):
    """Stale measurements (as from a machine twice as fast) make the first pick miss the budget; the miss is
    measured, stored and conditions the next pick, and the artifact's pick is measured within budget."""
    from edgenas.measure.timing import Measurement, Stats
    from edgenas.pipeline.budget import compile_for_budget
    from edgenas.store import Store

    db = tmp_path / "db.sqlite"
    stale = list(nb201.enumerate())[1000:15625:2900]
    with Store(db) as store:
        for arch in stale:
            ms = 0.2 * nb201.costs(arch).flops / 1e6
            stats = Stats.of([ms, ms, ms], number=1, max_spread=0.05)
            store.add("host", "nb201", arch, nb201.input_shape, {}, Measurement("tvm", "stale", 2, stats, None))
    said = []
    art = compile_for_budget("host", 70.0, tmp_path / "out", db=db, measurements=8, log=said.append)
    search = art.report["search"]
    assert search["stored_measurements_used"] == len(stale)
    first = search["candidates"][0]
    assert not first["fits"] and first["measured_ms"] > 70.0 and first["predicted_ms"] <= 70.0 * 1.5
    assert art.report["latency_ms"]["tvm"]["p50_ms"] <= 70.0 and art.report["fits_latency_budget"]
    assert art.manifest["arch"] in [c["arch"] for c in search["candidates"] if c["fits"]]
    with Store(db) as store:
        assert len([r for r in store.records(profile="host", runtime="tvm")]) == len(stale) + len(search["candidates"])
    assert any("misses 70 ms" in m for m in said)


def test_predict_only_profile_generates_from_stored_measurements(nb201, tmp_path):
    from edgenas.measure.timing import Measurement, Stats
    from edgenas.pipeline.budget import compile_for_budget
    from edgenas.store import Store

    db = tmp_path / "db.sqlite"
    said = []
    unverified = compile_for_budget("raspi4", 20.0, tmp_path / "none", db=db, log=said.append)
    zero_shot = unverified.report["search"]
    assert zero_shot["stored_measurements_used"] == 0 and not zero_shot["verified"]
    assert 0 < zero_shot["predicted_interval_ms"][0] < zero_shot["predicted_ms"] < zero_shot["predicted_interval_ms"][1]
    assert zero_shot["predicted_interval_ms"][1] <= 20.0, "only a pick whose calibrated upper bound fits"
    assert any("zero-shot pick" in m and "edgenas store import" in m for m in said)
    low, high = zero_shot["predicted_interval_ms"]
    printed = summary(unverified.report, unverified.directory)
    assert f"UNVERIFIED: predicted {zero_shot['predicted_ms']:.3f} ms (90 % interval {low:.3f}-{high:.3f} ms" in printed
    with Store(db) as store:  # measurements imported from the board
        for arch in list(nb201.enumerate())[500:15625:1500]:
            ms = 0.1 * nb201.costs(arch).flops / 1e6
            stats = Stats.of([ms, ms, ms], number=1, max_spread=0.05)
            store.add("raspi4", "nb201", arch, nb201.input_shape, {}, Measurement("tvm", "0.27", 4, stats, None))
    art = compile_for_budget("raspi4", 15.0, tmp_path / "pi", db=db)
    search = art.report["search"]  # stored latencies within the budget: the pick is one of them, verified
    assert search["verified"] and search["stored_ms"] <= 15.0 and "predicted_ms" not in search
    assert not art.report["measured"] and (tmp_path / "pi" / "model.so").exists()
    assert f"latency    {search['stored_ms']:.3f} ms as stored" in summary(art.report, art.directory)
    assert art.manifest["target"]["machine"] == "aarch64"


def test_a_degenerate_architecture_is_never_generated_and_warned_about_with_arch(small, tmp_path):
    from edgenas.pipeline.budget import compile_for_budget
    from edgenas.pipeline.compile import compile_artifact

    # Only cells whose output ignores their input fit 0.35 MB (the smallest live one needs 0.40 MB)
    with pytest.raises(EdgenasError, match="no architecture meets the memory budget"):
        compile_for_budget("host", 5.0, tmp_path / "gen", memory_mb=0.35, db=tmp_path / "db.sqlite")
    said = []
    art = compile_artifact("host", ARCH_DEGENERATE, tmp_path / "deg", space=small, measure_latency=False,
                           log=said.append)
    assert any(m.startswith("warning: ") and "is degenerate" in m for m in said)
    assert "is degenerate" in art.report["warnings"][0]


@pytest.mark.slow  # the fbnet space's compile; its own tests cover the rest: ~15 s
def test_an_fbnet_architecture_compiles_and_runs_like_pytorch(tmp_path):
    """The second space through the same path: export, TVM compile, artifact, and the library's output."""
    import numpy as np
    import torch

    from edgenas.artifact.load import load
    from edgenas.pipeline.compile import compile_artifact
    from edgenas.spaces import get_space

    fbnet = get_space("fbnet", input_size=16)
    arch = "k3_e1_g2-k5_e6-skip-k3_e3-" + "-".join(fbnet.sample(1, seed=9)[0].split("-")[4:])
    art = compile_artifact("host", arch, tmp_path / "fbnet", space=fbnet, measure_latency=False)
    assert art.manifest["space"] == "fbnet" and art.report["costs"]["params"] == fbnet.costs(arch).params
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = fbnet.build(arch)(torch.from_numpy(x)).numpy()
    assert np.abs(load(art.directory).predict(x) - expected).max() < 1e-3


def test_an_effnet_architecture_compiles_for_a_non_square_input_and_runs_like_pytorch(tmp_path):
    """The EfficientNet space (depthwise convolutions, squeeze-excitation, SiLU) through the same path, at a
    reduced input that is not square."""
    import numpy as np
    import torch

    from edgenas.artifact.load import load
    from edgenas.pipeline.compile import compile_artifact
    from edgenas.spaces import get_space

    effnet = get_space("effnet", input_size=48, input_width=32, num_classes=10)
    arch = "e1k3l1se-e6k5l1-e4k3l2se-e1k5l1-e6k3l2se-e4k5l1-e1k3l1se"
    art = compile_artifact("host", arch, tmp_path / "effnet", space=effnet, measure_latency=False)
    assert art.manifest["space"] == "effnet" and art.manifest["inputs"][0]["shape"] == [1, 3, 48, 32]
    assert art.report["costs"]["params"] == effnet.costs(arch).params
    hand = [k for k, source in art.report["compile"]["schedule_from"].items() if source == HAND_SCHEDULED]
    assert len(hand) >= 5 and all(k.startswith(("mean", "fused_matmul")) for k in hand), \
        "squeeze-excitation's pools and the classifier, by hand"
    assert sum(k.startswith("fused_matmul") for k in hand) == 1
    assert f"; {len(hand)} kernels (global pools, classifier) scheduled by hand" in summary(art.report, art.directory)
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 32)).astype(np.float32)
    with torch.no_grad():
        expected = effnet.build(arch)(torch.from_numpy(x)).numpy()
    assert expected.std() > 0.1, "the network's output depends on its input (batch norms calibrated)"
    assert np.abs(load(art.directory).predict(x) - expected).max() < 1e-4 * np.abs(expected).max()
