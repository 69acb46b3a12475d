"""int8: a small real network quantised (onnxruntime's QDQ form) and compiled by TVM with integer kernels."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgenas.compiler.compile import compile_onnx
from edgenas.compiler.export import export_onnx
from edgenas.compiler.int8 import quantize_onnx
from edgenas.device.profile import PROFILES
from edgenas.errors import EdgenasError


def network() -> nn.Module:
    """A padded convolution, a strided one, a depthwise one (groups) and a linear layer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("int8")
    export_onnx(network(), (1, 3, 16, 16), tmp / "float.onnx")
    rng = np.random.default_rng(0)
    quantize_onnx(tmp / "float.onnx", tmp / "int8.onnx", [rng.standard_normal((1, 3, 16, 16), dtype=np.float32)
                                                          for _ in range(16)])
    library = compile_onnx(tmp / "int8.onnx", PROFILES.get("host").resolved_target(), tmp / "int8.so")
    return tmp, library


def test_tvm_runs_the_quantised_network_with_integer_kernels_as_onnxruntime_does(quantised):
    import tvm
    from tvm import relax

    tmp, library = quantised
    integer = [s for s in library.signatures if any(d in ("uint8", "int8") for _, d in s.buffers[:-1])
               and s.buffers[-1][1] in ("int32", "float32", "int8")]
    # the three convolutions and the matrix product take the quantised activations and int8 weights
    assert sum(any(d == "int8" for _, d in s.buffers) and any(d == "uint8" for _, d in s.buffers)
               for s in integer) >= 4, [(s.name, s.buffers) for s in library.signatures]
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16), dtype=np.float32)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library.path)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    reference = ort.InferenceSession(str(tmp / "int8.onnx")).run(None, {"input": x})[0]
    floats = ort.InferenceSession(str(tmp / "float.onnx")).run(None, {"input": x})[0]
    assert np.abs(got - reference).max() <= 1e-5 * max(1.0, np.abs(reference).max()), "the QDQ model's arithmetic"
    assert 0 < np.abs(got - floats).max() <= 0.05 * np.abs(floats).max(), "quantised, close to the float network"


def test_the_quantised_file_holds_int8_weights_and_an_unknown_method_is_refused(quantised, tmp_path):
    import onnx

    tmp, _ = quantised
    model = onnx.load(str(tmp / "int8.onnx"))
    weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(weights) == 3, "every convolution's weights are int8"
    with pytest.raises(EdgenasError, match="no calibration method 'kl'; choose one of minmax, entropy, percentile"):
        quantize_onnx(tmp / "float.onnx", tmp_path / "x.onnx", [np.zeros((1, 3, 16, 16), np.float32)], "kl")


def test_the_quantised_network_tunes_and_its_tuned_integer_kernels_compile(quantised, tmp_path):
    """Tuning a QDQ model's integer kernels runs to its end, and compile replays the records (the weights packed
    where the schedule allows: some int8 schedules put the layout rewrite inside their loop nest)."""
    import tvm
    from tvm import relax

    from edgenas.compiler.tune import tune

    tmp, _ = quantised
    report = tune("host", trials=2, db=tmp_path / "db", model=tmp / "int8.onnx")
    assert report.trials_run > 0 and not any(t.skipped for t in report.tasks)
    library = compile_onnx(tmp / "int8.onnx", PROFILES.get("host").resolved_target(), tmp_path / "int8.so",
                           tuning_db=tmp_path / "db")
    assert library.tuned and not [k for k in library.fallback if "conv2d" in k or "matmul" in k], library.fallback
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16), dtype=np.float32)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library.path)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    reference = ort.InferenceSession(str(tmp / "int8.onnx")).run(None, {"input": x})[0]
    # tuned epilogues round in another order: a value at a quantisation step's edge may land one step away
    assert np.abs(got - reference).max() <= 0.05 * np.abs(reference).max()
