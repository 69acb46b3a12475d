"""LiteRT beside TVM (the [mobile] extra): a real NB201 network converted with litert-torch and run by the LiteRT
interpreter, phone artifacts with model.tflite, LiteRT as a profile's deployed runtime, and mobile targets
without the extra."""
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from edgenas import mobile
from edgenas.errors import EdgenasError
from edgenas.measure.place import measure
from edgenas.measure.timing import Timing

from ..conftest import ARCH

needs_mobile = pytest.mark.skipif(not mobile.available(), reason=mobile.MISSING)
FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=5, max_repeats=20, max_seconds=3)


@needs_mobile
def test_a_real_nb201_network_through_litert_matches_pytorch(nb201, tmp_path):
    """The full NB201 network (C=16, N=5, 32x32): converted, run by the interpreter with XNNPACK, same output."""
    import torch

    from edgenas.compiler.export import export_onnx, export_tflite
    from edgenas.compiler.tune import randomize_batch_norms

    model = randomize_batch_norms(nb201.build(ARCH))
    onnx = export_onnx(model, nb201.input_shape, tmp_path / "m.onnx")
    lite = export_tflite(model, onnx.reference_input, onnx.reference_outputs, tmp_path / "m.tflite")
    assert lite.path.stat().st_size > 4 * 700_000, "float32 weights of 0.8 M parameters"
    assert lite.max_abs_error <= 1e-4 and lite.converter.startswith("litert-torch ")
    x = np.random.default_rng(1).standard_normal(nb201.input_shape, dtype=np.float32)
    m = measure("litert", lite.path, x, threads=2, timing=FAST)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(m.outputs[0] - expected)) <= 1e-4 * max(1.0, np.max(np.abs(expected)))
    assert m.runtime == "litert" and m.threads == 2 and m.runtime_version.endswith("(XNNPACK)")
    assert 0 < m.stats.min_ms <= m.stats.p50_ms


@needs_mobile
def test_a_broken_tflite_file_is_a_clear_error(tmp_path, nb201):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(EdgenasError, match="LiteRT cannot load .*bad.tflite"):
        measure("litert", bad, np.zeros(nb201.input_shape, np.float32))


@needs_mobile
def test_a_phone_artifact_ships_tflite_and_its_litert_latency_here_is_stored_under_host(small, tmp_path):
    from edgenas.artifact.manifest import sha256
    from edgenas.pipeline.compile import compile_artifact
    from edgenas.store import Store

    db = tmp_path / "db.sqlite"
    art = compile_artifact("pixel", ARCH, tmp_path / "pixel", space=small, db=db)
    tflite = tmp_path / "pixel" / "model.tflite"
    assert art.manifest["files"]["model.tflite"] == sha256(tflite) and art.manifest["runtime"] == "litert"
    assert art.manifest["target"]["machine"] == "aarch64", "the TVM library is still cross-compiled for the phone"
    lite = art.report["litert"]
    assert lite["file"] == "model.tflite" and lite["max_abs_error_vs_pytorch"] <= 1e-4
    here = lite["latency_here"]
    assert here["stored_as"] == "host" and "(XNNPACK)" in here["version"] and here["p50_ms"] > 0
    assert not art.report["measured"], "nothing was timed on the phone"
    with Store(db) as store:
        (record,) = store.records()
    assert (record.id, record.profile, record.runtime, record.device) == (here["store_id"], "host", "litert", "local")
    written = json.loads((tmp_path / "pixel" / "report.json").read_text())
    assert written["litert"]["latency_here"]["store_id"] == record.id


@needs_mobile
def test_a_device_that_deploys_litert_is_measured_and_judged_on_litert(small, tmp_path, write_yaml):
    """A LiteRT device measured where edgenas runs: LiteRT is timed beside TVM, its latencies are the profile's
    support set, and the latency budget is checked on it."""
    from edgenas.device.profile import load_profile
    from edgenas.pipeline.compile import compile_artifact
    from edgenas.pipeline.measure_archs import measure_archs
    from edgenas.store import Store

    path = write_yaml("lite-here", """\
        name: lite-here
        description: this machine, deploying LiteRT
        kind: cpu
        target: native
        runtime: litert
        batch: 1
        budgets: {latency_ms: 1000}
        measure: {via: local}
    """)
    profile = load_profile(path)
    db = tmp_path / "db.sqlite"
    run = measure_archs(profile, [ARCH], space=small, db=db, timing=FAST)
    (row,) = run.rows
    assert set(row) == {"arch", "tvm", "onnxruntime", "litert"}
    with Store(db) as store:
        (record,) = store.records(profile="lite-here", runtime="litert")
        support = store.latest("lite-here", small.name, small.input_shape, runtime=profile.runtime)
    assert record.p50_ms == pytest.approx(row["litert"]["p50_ms"], abs=1e-5)
    # a timing taken while other processes kept the machine busy is stored, flagged, and not support
    assert record.under_load == row["litert"]["under_load"]
    assert support == ({} if record.under_load else pytest.approx({row["arch"]: record.p50_ms}, abs=1e-5))
    art = compile_artifact(profile, ARCH, tmp_path / "out", space=small, db=db)
    assert art.report["fits_latency_budget"] and "litert" in art.report["latency_ms"]
    assert "latency_here" not in art.report["litert"], "the device is this machine: timed once, as the device"


def test_a_litert_profile_cannot_be_measured_through_the_rpc_tracker(write_yaml):
    from edgenas.device.profile import load_profile

    path = write_yaml("lite-rpc", """\
        name: lite-rpc
        description: a phone behind a tracker
        kind: mobile-cpu
        target: aarch64
        runtime: litert
        batch: 1
        measure: {via: rpc, tracker: "127.0.0.1:9190", key: phones}
    """)
    with pytest.raises(EdgenasError, match="runtime: litert cannot be measured via: rpc"):
        load_profile(path)


@pytest.mark.slow  # a phone compile in a subprocess: ~25 s
def test_without_the_extra_a_phone_still_compiles_with_tvm_and_says_what_it_would_add(tmp_path):
    """The extra made unimportable in a fresh process (as on an installation without it)."""
    out = tmp_path / "pixel"
    code = ("import sys; sys.modules['litert_torch'] = None; sys.modules['ai_edge_litert'] = None; "
            "sys.modules['tflite_runtime'] = None; from edgenas.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, "compile", "-t", "pixel", "-a", ARCH, "-o", str(out),
                             "--db", str(tmp_path / "db.sqlite")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"litert     {mobile.MISSING}" in result.stdout
    assert (out / "model.so").exists() and not (out / "model.tflite").exists()
    assert json.loads((out / "report.json").read_text())["litert"] == {"missing": mobile.MISSING}
    assert not (tmp_path / "db.sqlite").exists() or not sqlite3.connect(tmp_path / "db.sqlite").execute(
        "SELECT COUNT(*) FROM measurements").fetchone()[0]
