"""PyTorch -> ONNX: batch norms folded into their convolutions, exported (opset 18), simplified with onnxsim,
checked with onnx.checker, and verified numerically against PyTorch with onnxruntime. PyTorch -> .tflite for
LiteRT (the [mobile] extra, `edgenas.mobile`): the same folded network converted with litert-torch and verified with
the LiteRT interpreter."""
from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxsim
import torch
from torch import nn

from ..errors import EdgenasError
from ..mobile import captured_output, converter
from ..runtimes import get_runtime

OPSET = 18
TOLERANCE = 1e-4  # accepted difference from PyTorch's output, relative to outputs larger than 1
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]  # one per output, in the model's order
    max_abs_error: float  # onnxruntime vs PyTorch on a random input
    reference_input: np.ndarray
    reference_outputs: tuple[np.ndarray, ...]  # the reference's outputs for reference_input
    input_name: str = INPUT_NAME
    output_names: tuple[str, ...] = (OUTPUT_NAME,)
    reference: str = "pytorch"  # what computed reference_outputs: PyTorch, or onnxruntime on the user's own file


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into the convolution."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i], module[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return model


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, tolerance: float = TOLERANCE,
                seed: int = 0) -> ExportResult:
    """Write `model` as a simplified, checked ONNX file at `path` and verify it against PyTorch. A network that
    returns a tuple of tensors gets outputs `output0`, `output1`, ... in its order; one tensor is `logits`."""
    path = Path(path)
    model = fold_batch_norms(model.eval())
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(input_shape, dtype=np.float32))
    with torch.no_grad():
        expected = tensors(model(x))
    names = (OUTPUT_NAME,) if len(expected) == 1 else tuple(f"output{i}" for i in range(len(expected)))
    with _quiet():
        program = torch.onnx.export(model, (x,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
                                    output_names=list(names), optimize=True, verbose=False)
    save_simplified(program.model_proto, path, "the exported network", "report this architecture as a bug")
    error = check_output("onnxruntime", get_runtime("onnxruntime").open(path, x.numpy(), 1).outputs, expected,
                         tolerance)
    return ExportResult(path, tuple(input_shape), tuple(e.shape for e in expected), error, x.numpy(), expected,
                        output_names=names)


def tensors(result) -> tuple[np.ndarray, ...]:
    """A PyTorch network's result as its output arrays: one tensor, or a tuple or list of them; refused
    otherwise (a dict, None, nested containers)."""
    if isinstance(result, torch.Tensor):
        return (result.numpy(),)
    if isinstance(result, (tuple, list)) and result and all(isinstance(t, torch.Tensor) for t in result):
        return tuple(t.numpy() for t in result)
    raise EdgenasError(f"the network returned a {type(result).__name__}; edgenas exports networks that return a "
                       f"tensor or a tuple of tensors: return those from forward()")


def save_simplified(model: onnx.ModelProto, path: Path, what: str, fix: str,
                    input_shapes: dict[str, list[int]] | None = None) -> onnx.ModelProto:
    """Simplify `model` with onnxsim (at `input_shapes`, where given), check it with onnx.checker and write it to
    `path`; a failure of the first two is one line naming `what` and suggesting `fix`."""
    try:
        simplified, ok = onnxsim.simplify(model, overwrite_input_shapes=input_shapes)
    except Exception as e:  # noqa: BLE001  (onnxsim raises what onnx and onnxruntime raise)
        raise EdgenasError(f"onnxsim cannot simplify {what}: {type(e).__name__}: {first_line(e)}; {fix}") from None
    if not ok:
        raise EdgenasError(f"onnxsim could not validate the simplified {what}; {fix}")
    try:
        onnx.checker.check_model(simplified, full_check=True)
    except onnx.checker.ValidationError as e:
        raise EdgenasError(f"{what} fails onnx.checker after simplification ({first_line(e)}); {fix}") from None
    try:
        onnx.save(simplified, str(path))
    except OSError as e:
        raise EdgenasError(f"cannot write {path} ({e.strerror}); choose a writable output directory") from None
    return simplified


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class TFLiteExport:
    path: Path
    max_abs_error: float  # the LiteRT interpreter vs PyTorch on the reference input
    seconds: float  # conversion and check
    converter: str


def export_tflite(model: nn.Module, x: np.ndarray, expected: tuple[np.ndarray, ...], path: str | Path,
                  tolerance: float = TOLERANCE) -> TFLiteExport:
    """Write `model` as a float32 .tflite file at `path` with litert-torch (taking the same NCHW input as the ONNX
    file) and verify it with the LiteRT interpreter: its outputs for `x` against PyTorch's, `expected`."""
    start = time.perf_counter()
    litert_torch = converter()
    model = fold_batch_norms(model.eval())
    try:
        with captured_output(), torch.no_grad():  # the converter prints progress and warnings from C++ too
            litert_torch.convert(model, (torch.from_numpy(x),)).export(str(path))
    except OSError as e:
        raise EdgenasError(f"cannot write {path} ({e.strerror}); choose a writable output directory") from None
    except Exception as e:  # noqa: BLE001  (the converter raises many types; all mean "cannot convert")
        raise EdgenasError(f"litert-torch cannot convert this network ({type(e).__name__}: "
                           f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}); report it as a bug") from None
    error = check_output("litert", get_runtime("litert").open(Path(path), x, 1).outputs, expected, tolerance)
    return TFLiteExport(Path(path), error, time.perf_counter() - start, f"litert-torch {litert_torch.__version__}")


def check_output(what: str, got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...],
                 tolerance: float = TOLERANCE, against: str = "PyTorch") -> float:
    """The largest max abs difference of any output from the reference's (`against`: PyTorch's, or onnxruntime's
    on a user's model); refused above `tolerance` x max(1, largest |output|) of that output, since float32 keeps
    about 7 significant digits of large outputs (untrained networks can reach thousands), and refused when the
    outputs' number or shapes differ."""
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        raise EdgenasError(f"{what} returned outputs shaped {[list(g.shape) for g in got]}, {against} "
                           f"{[list(e.shape) for e in expected]}; report it as a bug")
    worst = 0.0
    for i, (g, e) in enumerate(zip(got, expected)):
        error = float(np.max(np.abs(g - e))) if e.size else 0.0
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        if not error <= tolerance * max(1.0, scale):
            which = f"output {i}" if len(expected) > 1 else "output"
            raise EdgenasError(f"{what} {which} differs from {against}'s by {error:.3g} (values up to {scale:.3g}, "
                               f"allowed {tolerance:g} x max(1, that)); report it as a bug")
        worst = max(worst, error)
    return worst


@contextlib.contextmanager
def _quiet():
    """The dynamo exporter prints progress and warns about torchvision; keep the user's terminal clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
