"""edgenas.load on real artifacts: predictions equal PyTorch's, and every bad artifact or input is one clear error."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import edgenas
from edgenas.errors import EdgenasError

from ..conftest import ARCH


@pytest.fixture(scope="module")
def model(small_artifact):
    return edgenas.load(small_artifact.directory)


def test_predict_matches_pytorch(model, small):
    assert model.inputs[0].shape == small.input_shape and model.inputs[0].dtype == "float32"
    assert model.outputs[0].shape == (1, 10) and model.arch == small.canonical(ARCH)
    x = np.random.default_rng(0).standard_normal(model.inputs[0].shape).astype(np.float32)
    with torch.no_grad():
        expected = small.build(ARCH, seed=0).eval()(torch.from_numpy(x)).numpy()
    y = model.predict(x)
    assert y.shape == model.outputs[0].shape and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)


def test_bad_input(model):
    with pytest.raises(EdgenasError,
                       match=r"input has shape \(1, 3, 16, 16\), the model takes \(1, 3, 32, 32\) float32; "):
        model.predict(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(EdgenasError, match=r"input has dtype float64, the model takes float32; .*astype"):
        model.predict(np.zeros((1, 3, 32, 32)))
    with pytest.raises(EdgenasError, match="input is a list, the model takes a numpy array"):
        model.predict([[0.0]])
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((1, 3, 32, 32), np.float32)
        x[0, 1, 2, 3] = bad
        with pytest.raises(EdgenasError, match=r"input holds 1 NaN or infinite value\(s\); .*np.nan_to_num"):
            model.predict(x)


def copy_of(artifact, tmp_path):
    return shutil.copytree(artifact.directory, tmp_path / "artifact")


def test_bad_artifacts(small_artifact, tmp_path):
    with pytest.raises(EdgenasError, match="artifact directory .* does not exist; pass the directory"):
        edgenas.load(tmp_path / "nowhere")
    d = copy_of(small_artifact, tmp_path)
    (d / "model.so").write_bytes((d / "model.so").read_bytes()[:1000])
    with pytest.raises(EdgenasError, match="model.so does not match the SHA-256 in manifest.json"):
        edgenas.load(d)
    (d / "model.so").unlink()
    with pytest.raises(EdgenasError, match="model.so is missing; compile the artifact again"):
        edgenas.load(d)
    (d / "manifest.json").write_text('{"arch": ')
    with pytest.raises(EdgenasError, match="manifest.json is not readable JSON"):
        edgenas.load(d)
    (d / "manifest.json").write_text('{"arch": "x"}')
    with pytest.raises(EdgenasError, match="manifest.json lacks target, inputs, outputs, files"):
        edgenas.load(d)
    (d / "manifest.json").unlink()
    with pytest.raises(EdgenasError, match="manifest.json is missing"):
        edgenas.load(d)


def test_library_for_another_machine(small_raspi4_artifact):
    with pytest.raises(EdgenasError, match=r"model.so was built for aarch64/cpu \(target 'aarch64'\), this machine "
                                           r"runs x86_64/cpu; run it on that device, or compile .* --target host"):
        edgenas.load(small_raspi4_artifact.directory)


def test_manifest_lists_the_header(small_artifact):
    manifest = json.loads((small_artifact.directory / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.onnx", "model.so", "model.h"}


def test_malformed_manifest(small_artifact, tmp_path):
    d = copy_of(small_artifact, tmp_path)
    manifest = json.loads((d / "manifest.json").read_text())
    del manifest["inputs"][0]["shape"]
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgenasError, match=r"manifest.json has a malformed target or input/output entry \(KeyError"):
        edgenas.load(d)
