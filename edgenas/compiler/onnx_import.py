"""The user's own model made into what edgenas compiles. An ONNX file (`import_onnx`): read and checked, its
dynamic dimensions fixed by the input shape the user gives, the initializers that old exporters (opset <= 9,
IR < 4) also list as graph inputs taken out of the inputs, every operator checked against what TVM's ONNX
frontend imports, simplified with onnxsim, written as model.onnx and verified with onnxruntime against the file
as given. A PyTorch `nn.Module` from a factory `package.module:function` (`import_torch`): exported as edgenas
exports its own networks, verified against PyTorch. Static costs (FLOPs of convolutions and matrix products,
parameters, peak activations) come from the graph (`graph_costs`). Every problem is one line naming the
operator, node, input or factory and what to do.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ..errors import EdgenasError
from ..spaces.base import Costs, peak_live
from .export import TOLERANCE, ExportResult, check_output, export_onnx, first_line, save_simplified

MODEL_SPACE = "model"  # what the store and the manifest record as the space of a user's model


@dataclass(frozen=True)
class ImportedModel:
    """A user's model as the pipeline sees it where it sees a search space and an architecture: the store keeps
    its measurements under space `model` and arch `onnx:<16 hex digits of the SHA-256 of the user's file>` (of
    model.onnx as exported, for a PyTorch factory)."""

    source: str  # the file or the factory as given
    sha256: str
    opset: int
    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    cost: Costs
    name: str = MODEL_SPACE

    @property
    def arch(self) -> str:
        return f"onnx:{self.sha256[:16]}"

    def costs(self, _arch: str | None = None) -> Costs:
        return self.cost


def import_onnx(source: str | Path, path: str | Path, input_shape: tuple[int, ...] | None = None,
                seed: int = 0) -> tuple[ImportedModel, ExportResult]:
    """Check the ONNX model at `source`, fix its input shape (`input_shape` where it has dynamic dimensions),
    simplify it and write it to `path`; verify the written file against `source` on onnxruntime."""
    source = Path(source)
    if not source.is_file():
        raise EdgenasError(f"model file {source} does not exist; pass an .onnx file with --model")
    data = source.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001  (protobuf raises its own types for files that are not ONNX)
        raise EdgenasError(f"{source} is not an ONNX model ({type(e).__name__}); pass an .onnx file with "
                           f"--model") from None
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgenasError(f"{source} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); edgenas "
                           f"compiles models with one input tensor")
    outputs = list(graph.output)
    for o in outputs:
        if o.type.tensor_type.elem_type not in (onnx.TensorProto.UNDEFINED, onnx.TensorProto.FLOAT):
            raise EdgenasError(f"output '{o.name}' of {source} is "
                               f"{onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type)}; edgenas "
                               f"compiles models whose outputs are float32: drop or cast that output (e.g. "
                               f"onnx.utils.extract_model keeps the ones you name)")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        raise EdgenasError(f"input '{inputs[0].name}' of {source} is "
                           f"{onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)}; edgenas compiles models "
                           f"with a float32 input: export the float model")
    shape = _fixed_shape(source, inputs[0].name, tensor.shape, input_shape)
    _check_operators(source, graph)
    del graph.input[:]
    graph.input.extend(inputs)  # initializers are constants, not inputs, whatever the file's IR version says
    model.ir_version = max(model.ir_version, 4)  # IR 4 is where initializers stopped having to be inputs
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    expected = _run(source, data, inputs[0].name, x)
    path = Path(path)
    simplified = save_simplified(model, path, str(source), "check the model with onnx.checker and onnxruntime, "
                                 "or export it again", {inputs[0].name: list(shape)})
    got = _run(path, simplified.SerializeToString(), inputs[0].name, x)
    error = check_output(f"onnxruntime on {source.name} simplified:", got, expected, TOLERANCE,
                         against="the original file")
    names = tuple(o.name for o in outputs)
    imported = ImportedModel(str(source), hashlib.sha256(data).hexdigest(), _opset(model), inputs[0].name, shape,
                             names, graph_costs(simplified))
    return imported, ExportResult(path, shape, tuple(e.shape for e in expected), error, x, expected,
                                  inputs[0].name, names, reference="onnxruntime")


def import_model(source: str | Path, path: str | Path, input_shape: tuple[int, ...] | None = None,
                 seed: int = 0) -> tuple[ImportedModel, ExportResult, object | None]:
    """`import_onnx` for a file (or anything without a colon), else `import_torch` for a factory; the third
    value is the PyTorch module (None for an ONNX file)."""
    if Path(source).is_file() or ":" not in str(source):
        return (*import_onnx(source, path, input_shape, seed), None)
    return import_torch(str(source), path, input_shape, seed)


def import_torch(factory: str, path: str | Path, input_shape: tuple[int, ...] | None,
                 seed: int = 0) -> tuple[ImportedModel, ExportResult, object]:
    """Call `factory` ("package.module:function", importable from here or the working directory) for an
    `nn.Module`, export it for an input of `input_shape` to `path` and verify it against PyTorch; also return the
    module (for LiteRT's converter)."""
    import torch

    if input_shape is None:
        raise EdgenasError("a PyTorch --model needs its example input's shape: pass --input-shape, e.g. "
                           "--input-shape 1,3,224,224")
    module_name, _, function = factory.partition(":")
    if not module_name or not function.isidentifier():
        raise EdgenasError(f"--model {factory} is neither an .onnx file nor a factory; pass a file, or "
                           f"package.module:function returning a torch.nn.Module")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001  (importing user code can raise anything)
        raise EdgenasError(f"cannot import {module_name} for --model {factory} ({type(e).__name__}: "
                           f"{first_line(e)}); make it importable from the working directory or PYTHONPATH") \
            from None
    if not callable(getattr(module, function, None)):
        raise EdgenasError(f"{module_name} has no function {function} for --model {factory}; name a function "
                           f"that returns a torch.nn.Module")
    try:
        network = getattr(module, function)()
    except Exception as e:  # noqa: BLE001
        raise EdgenasError(f"--model {factory} failed when called ({type(e).__name__}: {first_line(e)}); it is "
                           f"called without arguments") from None
    if not isinstance(network, torch.nn.Module):
        raise EdgenasError(f"--model {factory} returned a {type(network).__name__}, not a torch.nn.Module")
    torch.manual_seed(seed)
    try:
        exported = export_onnx(network, tuple(input_shape), path, seed=seed)
    except EdgenasError:
        raise
    except Exception as e:  # noqa: BLE001  (the exporter raises many types; all mean "cannot export this")
        raise EdgenasError(f"PyTorch cannot export --model {factory} for input {list(input_shape)} to ONNX "
                           f"({type(e).__name__}: {first_line(e)}); check the input shape and the model") from None
    data = Path(path).read_bytes()
    written = onnx.load_from_string(data)
    _check_operators(Path(path), written.graph)
    imported = ImportedModel(factory, hashlib.sha256(data).hexdigest(), _opset(written), exported.input_name,
                             tuple(input_shape), exported.output_names, graph_costs(written))
    return imported, exported, network


def _opset(model: onnx.ModelProto) -> int:
    """The model's version of the default (ai.onnx) operator set."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _fixed_shape(source: Path, name: str, dims, given: tuple[int, ...] | None) -> tuple[int, ...]:
    """The input's shape: the file's, with `given` filling (and having to agree with) its dimensions."""
    declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims.dim]
    if given is None:
        if None in declared:
            example = ",".join(str(d or 1) for d in declared)
            raise EdgenasError(f"input '{name}' of {source} has dynamic dimensions "
                               f"{_shape_text(dims)}; fix them with --input-shape, e.g. --input-shape {example}")
        return tuple(declared)
    if len(given) != len(declared) or any(d is not None and d != g for d, g in zip(declared, given)):
        raise EdgenasError(f"--input-shape {','.join(map(str, given))} does not fit input '{name}' of {source}, "
                           f"shaped {_shape_text(dims)}; give {len(declared)} dimensions that keep its fixed ones")
    return tuple(given)


def _shape_text(dims) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else
                           (d.dim_param or "?") for d in dims.dim) + "]"


def _check_operators(source: Path, graph) -> None:
    """Refuse, naming the node, the first operator TVM's ONNX frontend does not import."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = _get_convert_map()
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in known:
            op = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
            raise EdgenasError(f"operator {op} (node '{node.name or node.output[0]}') of {source} is not supported "
                               f"by TVM's ONNX importer; export the model without it (e.g. a lower opset, or the "
                               f"operator written with supported ones) and compile again")


def _run(path: Path, data: bytes, input_name: str, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """onnxruntime's outputs of the model (bytes of `path`) for `x`."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        return tuple(session.run(None, {input_name: x}))
    except Exception as e:  # noqa: BLE001  (onnxruntime raises its own error types)
        raise EdgenasError(f"onnxruntime cannot run {path}: {first_line(e)}; check the model and --input-shape") \
            from None


def graph_costs(model: onnx.ModelProto) -> Costs:
    """FLOPs (2 per multiply-accumulate of Conv, ConvTranspose, Gemm and MatMul), parameters (elements of the
    float initializers) and peak activation bytes (float32, nodes in file order, each tensor freed after its last
    reader) of a model whose shapes are static."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*g.input, *g.value_info, *g.output)}
    weights = {t.name: list(t.dims) for t in g.initializer}
    shapes.update(weights)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
    params = sum(int(np.prod(t.dims)) for t in g.initializer if t.data_type in floats)
    macs, steps = 0, []
    constants = set(weights)
    input_name = g.input[0].name
    for node in g.node:
        if node.op_type == "Constant":
            constants.update(node.output)
            continue
        out = shapes.get(node.output[0], [])
        elements = int(np.prod(out)) if out else 0
        if node.op_type == "Conv" and node.input[1] in shapes:  # weights (out, in / groups, kh, kw)
            macs += elements * int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type == "ConvTranspose" and node.input[1] in shapes:  # weights (in, out / groups, kh, kw)
            macs += int(np.prod(shapes.get(node.input[0], [0]))) * int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("Gemm", "MatMul") and shapes.get(node.input[0]):
            a = shapes[node.input[0]]
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            macs += elements * (a[-2] if trans_a else a[-1])
        ins = ["input" if i == input_name else i for i in node.input if i and i not in constants]
        steps.append((node.output[0], ins, elements))
    peak = peak_live(steps, int(np.prod(shapes[input_name])))
    return Costs(2 * macs, params, 4 * peak)
