import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgenas.compiler.onnx_import import import_onnx
from edgenas.errors import EdgenasError
from tests.conftest import old_onnx


def test_an_old_style_file_is_imported_with_its_batch_fixed_and_its_initializers_constants(tmp_path):
    source = old_onnx(tmp_path / "old.onnx")
    model, exported = import_onnx(source, tmp_path / "model.onnx", (2, 3, 12, 16))
    written = onnx.load(str(exported.path))
    assert [i.name for i in written.graph.input] == ["data"], "initializers are no graph inputs any more"
    assert [d.dim_value for d in written.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 12, 16]
    assert model.arch.startswith("onnx:") and model.opset == 9 and model.name == "model"
    assert exported.input_name == "data" and exported.output_names == ("out",) and exported.reference == "onnxruntime"
    x = exported.reference_input
    original = ort.InferenceSession(str(source)).run(None, {"data": x})[0]
    assert np.allclose(exported.reference_outputs[0], original) and exported.output_shapes == ((2, 5),)
    # hand-computed: conv 2 x 8 x 12 x 16 outputs x 27 MACs + gemm 2 x 5 x 8 MACs, 2 FLOPs each; 8*27+8+40+5
    # parameters; the conv's and the ReLU's outputs (2 x 3072 floats) alive together
    assert model.cost.flops == 2 * (2 * 8 * 12 * 16 * 27 + 2 * 5 * 8)
    assert model.cost.params == 8 * 27 + 8 + 5 * 8 + 5
    assert model.cost.peak_activation_bytes == 4 * 2 * 2 * 8 * 12 * 16


@pytest.mark.parametrize("kwargs, shape, message", [
    ({}, None, "has dynamic dimensions [N, 3, 12, 16]; fix them with --input-shape, e.g. --input-shape 1,3,12,16"),
    ({}, (1, 3, 16, 12), "--input-shape 1,3,16,12 does not fit input 'data'"),
    ({"op": "Celu"}, (1, 3, 12, 16), "operator Celu (node 'act') of"),
])
def test_what_cannot_be_compiled_is_refused_in_one_line(tmp_path, kwargs, shape, message):
    source = old_onnx(tmp_path / "old.onnx", **kwargs)
    with pytest.raises(EdgenasError, match=re.escape(message)):
        import_onnx(source, tmp_path / "model.onnx", shape)
    assert not (tmp_path / "model.onnx").exists()


def test_several_outputs_are_kept_in_order_with_the_batch_fixed(tmp_path):
    source = old_onnx(tmp_path / "old.onnx", outputs=2)
    model, exported = import_onnx(source, tmp_path / "model.onnx", (3, 3, 12, 16))
    assert model.output_names == exported.output_names == ("out", "f")
    assert exported.output_shapes == ((3, 5), (3, 8))
    original = ort.InferenceSession(str(source)).run(None, {"data": exported.reference_input})
    assert all(np.allclose(got, want) for got, want in zip(exported.reference_outputs, original, strict=True))


def test_an_output_that_is_not_float32_is_refused(tmp_path):
    source = old_onnx(tmp_path / "old.onnx")
    model = onnx.load(str(source))
    model.graph.node.append(onnx.helper.make_node("ArgMax", ["out"], ["label"], axis=1, name="argmax"))
    model.graph.output.append(onnx.helper.make_tensor_value_info("label", onnx.TensorProto.INT64, ["N", 1]))
    onnx.save(model, str(source))
    with pytest.raises(EdgenasError, match=re.escape("output 'label' of") + ".*is int64; edgenas compiles models "
                       "whose outputs are float32"):
        import_onnx(source, tmp_path / "model.onnx", (1, 3, 12, 16))
    assert not (tmp_path / "model.onnx").exists()


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(EdgenasError, match="is not an ONNX model"):
        import_onnx(tmp_path / "notes.onnx", tmp_path / "model.onnx")
    with pytest.raises(EdgenasError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx", tmp_path / "model.onnx")
