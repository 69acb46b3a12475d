"""The user's own model through the real command line: `edgenas compile --model` on an ONNX file edgenas did not
make, then `gate`, `load` and the store."""
import json
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import edgenas
from edgenas.store import Store

from ..artifact.test_cpp import build_example
from ..conftest import fails_with, old_onnx


def edgenas_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgenas", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user-model")
    source, out, db = old_onnx(tmp / "old.onnx"), tmp / "host", tmp / "store.sqlite"
    result = edgenas_cli("compile", "--model", str(source), "--input-shape", "1,3,12,16", "-o", str(out),
                         "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    return source, out, db, json.loads(result.stdout)


def test_an_old_onnx_file_compiles_into_a_measured_artifact(compiled):
    source, out, _, report = compiled
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["space"] == "model" and manifest["arch"] == report["arch"] and report["arch"].startswith("onnx:")
    assert manifest["inputs"] == [{"name": "data", "shape": [1, 3, 12, 16], "dtype": "float32"}]
    assert manifest["outputs"] == [{"name": "out", "shape": [1, 5], "dtype": "float32"}]
    assert report["model"]["source"] == str(source) and report["model"]["opset"] == 9
    assert report["export"]["max_abs_error_onnxruntime_vs_onnxruntime"] <= 1e-5
    for runtime in ("tvm", "onnxruntime"):
        assert report["latency_ms"][runtime]["max_abs_error_vs_onnxruntime"] <= 1e-4
    assert report["costs"]["params"] == 8 * 27 + 8 + 5 * 8 + 5
    assert '#define EDGENAS_SPACE "model"' in (out / "model.h").read_text()
    kernels = report["kernels"]["by_kernel"]  # the per-kernel profile: every kernel, timed alone
    assert len(kernels) == report["compile"]["kernels"] and all(k["us_per_call"] > 0 for k in kernels)
    assert sum(k["share"] for k in kernels) == pytest.approx(1.0, abs=0.01)
    assert [k["share"] for k in kernels] == sorted((k["share"] for k in kernels), reverse=True)


def test_the_artifact_loads_gates_and_is_stored_under_the_file_s_hash(compiled):
    source, out, db, report = compiled
    x = np.random.default_rng(3).standard_normal((1, 3, 12, 16), dtype=np.float32)
    expected = ort.InferenceSession(str(source)).run(None, {"data": x})[0]
    assert np.allclose(edgenas.load(out).predict(x), expected, atol=1e-4)
    gate = edgenas_cli("gate", str(out), "--target", "host", "--budget-ms", "1000", "--json")
    assert gate.returncode == 0, gate.stderr
    with Store(db) as store:
        rows = list(store.records(profile="host"))
    assert {(r.space, r.arch, r.runtime) for r in rows} == {("model", report["arch"], "tvm"),
                                                            ("model", report["arch"], "onnxruntime")}


def test_options_that_do_not_apply_to_a_model_are_refused(tmp_path):
    source = str(old_onnx(tmp_path / "old.onnx"))
    fails_with("--arch does not apply to --model", "compile", "--model", source, "--arch", "x", "-o", str(tmp_path))
    fails_with("--input-shape fixes the input of a --model file", "compile", "--input-shape", "1,3,8,8")
    fails_with("is not a shape", "compile", "--model", source, "--input-shape", "1,x,8")
    fails_with("fix them with --input-shape", "compile", "--model", source, "-o", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


FACTORY = '''
import torch
from torch import nn


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 4))


def not_a_network():
    return 42
'''


def test_a_pytorch_factory_compiles_and_its_outputs_match_pytorch(tmp_path):
    (tmp_path / "mynet.py").write_text(FACTORY)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "edgenas", "compile", "--model", "mynet:make", "--input-shape",
                             "1,3,20,24", "-o", str(out), "--db", str(tmp_path / "s.sqlite"), "--json"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"]["source"] == "mynet:make" and report["export"]["reference"] == "pytorch"
    assert report["latency_ms"]["tvm"]["max_abs_error_vs_pytorch"] <= 1e-4
    assert report["costs"]["flops"] == 2 * (20 * 24 * 6 * 27 + 6 * 4)
    import torch

    sys.path.insert(0, str(tmp_path))
    try:
        import mynet

        x = np.random.default_rng(1).standard_normal((1, 3, 20, 24), dtype=np.float32)
        with torch.no_grad():
            expected = mynet.make().eval()(torch.from_numpy(x)).numpy()
    finally:
        sys.path.remove(str(tmp_path))
    assert np.allclose(edgenas.load(out).predict(x), expected, atol=1e-4)
    for factory, message in (("mynet:not_a_network", "returned a int, not a torch.nn.Module"),
                             ("mynet:absent", "mynet has no function absent"),
                             ("nowhere:make", "cannot import nowhere")):
        bad = subprocess.run([sys.executable, "-m", "edgenas", "compile", "--model", factory, "--input-shape",
                              "1,3,8,8", "-o", str(tmp_path / "bad")], capture_output=True, text=True, cwd=tmp_path)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_measure_stores_a_model_once_under_its_hash(tmp_path):
    source, db = str(old_onnx(tmp_path / "old.onnx")), str(tmp_path / "store.sqlite")
    first = edgenas_cli("measure", "--model", source, "--input-shape", "1,3,12,16", "--db", db, "--json")
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)["rows"]
    assert len(rows) == 1 and rows[0]["arch"].startswith("onnx:") and {"tvm", "onnxruntime"} <= set(rows[0])
    again = json.loads(edgenas_cli("measure", "--model", source, "--input-shape", "1,3,12,16", "--db", db,
                                   "--json").stdout)
    loaded = {r for r, s in rows[0].items() if r != "arch" and s["under_load"]}  # not support: measured again
    if loaded:
        assert set(again["rows"][0]) - {"arch"} == loaded
    else:
        assert again["rows"] == [] and again["skipped"] == [rows[0]["arch"]], "a rerun measures nothing twice"
    fails_with("--sample does not apply to --model", "measure", "--model", source, "--sample", "3")


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None, reason="needs cmake and g++")
def test_the_cpp_example_runs_the_user_s_model_unchanged(compiled, tmp_path):
    """examples/cpp, built against the artifact's model.h (a 12x16 input, 5 output values, the names of the user's
    file), gives onnxruntime's output on the user's original file."""
    source, out, _, _ = compiled
    exe = build_example(out, tmp_path / "build")
    x = np.random.default_rng(4).standard_normal((1, 3, 12, 16), dtype=np.float32)
    x.tofile(tmp_path / "input.f32")
    subprocess.run([str(exe), str(out / "model.so"), str(tmp_path / "input.f32"), str(tmp_path / "output.f32")],
                   check=True)
    expected = ort.InferenceSession(str(source)).run(None, {"data": x})[0]
    np.testing.assert_allclose(np.fromfile(tmp_path / "output.f32", np.float32), expected.ravel(), atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory):
    """The old-style file with a second output (the pooled features) and its dynamic batch fixed at 2."""
    tmp = tmp_path_factory.mktemp("two-outputs")
    source, out = old_onnx(tmp / "two.onnx", outputs=2), tmp / "host"
    result = edgenas_cli("compile", "--model", str(source), "--input-shape", "2,3,12,16", "-o", str(out),
                         "--db", str(tmp / "store.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    x = np.random.default_rng(5).standard_normal((2, 3, 12, 16), dtype=np.float32)
    return source, out, x, ort.InferenceSession(str(source)).run(None, {"data": x})


def test_a_model_with_two_outputs_and_a_dynamic_batch_compiles_loads_predicts_and_gates(two_outputs, tmp_path):
    source, out, x, expected = two_outputs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["outputs"] == [{"name": "out", "shape": [2, 5], "dtype": "float32"},
                                   {"name": "f", "shape": [2, 8], "dtype": "float32"}]
    assert "#define EDGENAS_NUM_OUTPUTS 2" in (out / "model.h").read_text()
    got = edgenas.load(out).predict(x)
    assert isinstance(got, tuple) and len(got) == 2
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=0)
    np.save(tmp_path / "x.npy", x)
    printed = edgenas_cli("predict", str(out), "-i", str(tmp_path / "x.npy"))
    assert printed.returncode == 0 and set(json.loads(printed.stdout)) == {"out", "f"}
    saved = edgenas_cli("predict", str(out), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz"))
    assert saved.returncode == 0 and np.allclose(np.load(tmp_path / "y.npz")["f"], expected[1], atol=1e-4)
    refused = edgenas_cli("predict", str(out), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert refused.returncode == 2 and "has 2 outputs; give --output a .npz file" in refused.stderr
    gate = edgenas_cli("gate", str(out), "--target", "host", "--budget-ms", "1000", "--json")
    assert gate.returncode == 0, gate.stderr


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None, reason="needs cmake and g++")
def test_the_cpp_example_writes_every_output_in_order(two_outputs, tmp_path):
    source, out, x, expected = two_outputs
    exe = build_example(out, tmp_path / "build")
    x.tofile(tmp_path / "input.f32")
    subprocess.run([str(exe), str(out / "model.so"), str(tmp_path / "input.f32"), str(tmp_path / "output.f32")],
                   check=True)
    np.testing.assert_allclose(np.fromfile(tmp_path / "output.f32", np.float32),
                               np.concatenate([e.ravel() for e in expected]), atol=1e-4, rtol=0)
