import numpy as np
import onnx
import pytest
import torch

from edgenas.compiler.export import OPSET, check_output, export_onnx, fold_batch_norms, tensors
from edgenas.compiler.tune import randomize_batch_norms
from edgenas.errors import EdgenasError
from edgenas.spaces import get_space

from ..conftest import ARCH, ARCH_CONST


def onnx_flops(path) -> int:
    """2 x multiply-accumulates of every Conv and Gemm/MatMul in an ONNX graph, from its inferred shapes."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            co, ci, kh, kw = weights[node.input[1]]
            n, _, ho, wo = shapes[node.output[0]]
            macs += n * co * ci * kh * kw * ho * wo
        elif node.op_type in ("Gemm", "MatMul"):
            out = shapes[node.output[0]]
            k = shapes[node.input[0]][-1]
            macs += int(np.prod(out)) * k
    return 2 * macs


@pytest.fixture(scope="module")
def exported(small, tmp_path_factory):
    model = randomize_batch_norms(small.build(ARCH))
    return export_onnx(model, small.input_shape, tmp_path_factory.mktemp("export") / "m.onnx")


def test_export_is_checked_simplified_and_matches_pytorch(exported):
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == OPSET >= 17
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("BatchNormalization") == 1, "only the final BN-ReLU has no convolution to fold into"
    assert "Conv" in ops
    assert exported.max_abs_error <= 1e-4
    assert exported.output_shapes == ((1, 10),)


def test_folding_batch_norms_keeps_the_function(small):
    model = randomize_batch_norms(small.build(ARCH), seed=3)
    x = torch.randn(*small.input_shape)
    with torch.no_grad():
        before = model(x)
        after = fold_batch_norms(model)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m is not model.lastact[0] for m in model.modules())
    assert torch.allclose(before, after, atol=1e-5)


def test_costs_count_what_the_deployed_graph_runs(small, tmp_path):
    """Constant paths are folded and dead nodes removed by export; the analytic FLOPs must agree with the graph."""
    for arch in (ARCH, ARCH_CONST):
        result = export_onnx(randomize_batch_norms(small.build(arch)), small.input_shape, tmp_path / "m.onnx")
        assert onnx_flops(result.path) == small.costs(arch).flops, arch


def test_batched_export(tmp_path):
    space = get_space("nb201", channels=8, cells_per_stage=1, batch=3)
    result = export_onnx(space.build(ARCH), space.input_shape, tmp_path / "b.onnx")
    assert result.output_shapes == ((3, 10),)
    assert onnx_flops(result.path) == space.costs(ARCH).flops


class TwoHeads(torch.nn.Module):
    """A network with two outputs, as detectors and multi-task models have: class scores and a feature map."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        features = torch.relu(self.conv(x))
        return self.fc(features.mean((2, 3))), features


def test_a_network_with_several_outputs_exports_each_in_order(tmp_path):
    torch.manual_seed(0)
    result = export_onnx(TwoHeads(), (2, 3, 6, 10), tmp_path / "two.onnx")
    assert result.output_names == ("output0", "output1") and result.output_shapes == ((2, 2), (2, 4, 6, 10))
    model = onnx.load(str(result.path))
    assert [o.name for o in model.graph.output] == ["output0", "output1"]
    assert result.max_abs_error <= 1e-4 and len(result.reference_outputs) == 2


def test_outputs_that_differ_in_number_shape_or_value_are_refused():
    a, b = np.zeros((1, 3), np.float32), np.ones((2, 2), np.float32)
    assert check_output("x", (a, b), (a, b.copy())) == 0.0
    with pytest.raises(EdgenasError, match=r"returned outputs shaped \[\[1, 3\]\], PyTorch \[\[1, 3\], \[2, 2\]\]"):
        check_output("x", (a,), (a, b))
    with pytest.raises(EdgenasError, match="x output 1 differs from PyTorch's by 1"):
        check_output("x", (a, b), (a, b + 1))
    with pytest.raises(EdgenasError, match="returned a dict; edgenas exports networks that return a tensor or a "
                                           "tuple of tensors"):
        tensors({"y": torch.zeros(1)})


def test_unwritable_path_is_a_clear_error(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EdgenasError, match="cannot write .*choose a writable output directory"):
        export_onnx(small.build(ARCH), small.input_shape, blocker / "m.onnx")
