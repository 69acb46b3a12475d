"""The FBNet space against its definition (../shared/benchmarks/fbnet/README.md)."""
import numpy as np
import pytest
import torch

from edgenas.errors import EdgenasError
from edgenas.spaces import get_space
from edgenas.spaces.fbnet.layers import OPS

from ..conftest import SHARED, pytorch_macs

ALL_SKIP = "-".join(["skip"] * 22)


@pytest.fixture(scope="module")
def fbnet():
    return get_space("fbnet")


def test_strings_encodings_and_choices(fbnet):
    arch = fbnet.sample(1, seed=3)[0]
    assert fbnet.canonical(f" {arch} ".replace("-", " - ")) == arch
    x = fbnet.encode(arch)
    assert x.shape == (22 * 9,) and x.sum() == 22
    choices = tuple(int(i) for i in x.reshape(22, 9).argmax(1))
    assert fbnet.from_choices(choices) == arch and fbnet.decisions == (9,) * 22
    assert fbnet.decode(x) == arch, "decode inverts encode"
    assert OPS.index("k3_e1") == 0 and OPS.index("k5_e1_g2") == 5 and OPS.index("skip") == 8, "the source's indices"
    assert fbnet.size == 9 ** 22


@pytest.mark.parametrize("arch, message", [
    ("-".join(["skip"] * 21), "expected 22 operations joined by '-', got 21"),
    (ALL_SKIP.replace("skip", "k3_e2", 1), "layer 1: unknown operation 'k3_e2'"),
    ("skip-" + ALL_SKIP[5:].replace("skip", "k5_e1_g3", 1), "layer 2: unknown operation 'k5_e1_g3'; did you mean"),
    ("", "is empty"),
])
def test_bad_arch_strings(fbnet, arch, message):
    with pytest.raises(EdgenasError, match=message):
        fbnet.canonical(arch)


def test_it_samples_and_refuses_to_enumerate(fbnet):
    archs = fbnet.sample(50, seed=0)
    assert len(set(archs)) == 50 and fbnet.sample(20, seed=0) == archs[:20]
    with pytest.raises(EdgenasError, match="too many to list"):
        next(iter(fbnet.enumerate()))


def test_the_network_has_the_readmes_shapes(fbnet):
    net = fbnet.build(fbnet.sample(1, seed=1)[0])
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for layer in net.layers]
    with torch.no_grad():
        out = net(torch.zeros(fbnet.input_shape))
    for h in hooks:
        h.remove()
    # 7 stages of [1, 4, 4, 4, 4, 4, 1] layers, [16, 24, 32, 64, 112, 184, 352] channels, strides [1, 1, 2, 2, 1, 2, 1]
    expected = [(16, 32)] + [(24, 32)] * 4 + [(32, 16)] * 4 + [(64, 8)] * 4 + [(112, 8)] * 4 + [(184, 4)] * 4 + [(352, 4)]
    assert [(s[1], s[2]) for s in shapes] == expected
    assert out.shape == (1, 100) and net.head[0].out_channels == 1504


def test_parameters_of_hand_computed_cases(fbnet):
    # all skips: stem 3*16*9 + 32; 1x1 convolutions + BN where channels or stride change (16->24, 24->32, 32->64,
    # 64->112, 112->184, 184->352); head 352*1504 + 2*1504; classifier 1504*100 + 100
    stem = 3 * 16 * 9 + 2 * 16
    skips = sum(a * b + 2 * b for a, b in [(16, 24), (24, 32), (32, 64), (64, 112), (112, 184), (184, 352)])
    head = 352 * 1504 + 2 * 1504 + 1504 * 100 + 100
    assert fbnet.costs(ALL_SKIP).params == stem + skips + head == 780660
    # layer 3 (24 -> 24, stride 1) as k3_e1_g2: grouped 1x1 24->24 (288), depthwise 3x3 (216), grouped 1x1 (288),
    # three batch norms of 24
    one = ALL_SKIP.split("-")
    one[2] = "k3_e1_g2"
    assert fbnet.costs("-".join(one)).params - 780660 == 288 + 216 + 288 + 3 * 48
    for arch in fbnet.sample(5, seed=2):
        assert fbnet.costs(arch).params == sum(p.numel() for p in fbnet.build(arch).parameters())


def test_flops_are_the_deployed_networks(fbnet):
    for arch in fbnet.sample(3, seed=4):
        assert fbnet.costs(arch).flops == 2 * pytorch_macs(fbnet.build(arch), fbnet.input_shape)
    assert fbnet.costs(ALL_SKIP).peak_activation_bytes > 4 * 16 * 32 * 32, "the stem's output and its input at once"


def test_tuning_archs_cover_every_operation_in_every_layer(fbnet):
    covered = {(layer, name) for arch in fbnet.tuning_archs() for layer, name in enumerate(fbnet.parse(arch))}
    assert covered == {(layer, name) for layer in range(22) for name in OPS}


def test_exports_to_onnx_matching_pytorch(fbnet, tmp_path):
    from edgenas.compiler.export import export_onnx
    from edgenas.compiler.tune import randomize_batch_norms

    arch = "k3_e1_g2-" + "-".join(fbnet.sample(1, seed=5)[0].split("-")[1:])
    exported = export_onnx(randomize_batch_norms(fbnet.build(arch)), fbnet.input_shape, tmp_path / "fbnet.onnx")
    assert exported.output_shapes == ((1, 100),) and exported.max_abs_error < 1e-3


@pytest.mark.skipif(not (SHARED / "fbnet").is_dir(), reason="needs ../shared/benchmarks/fbnet")
def test_the_shared_table_reads_in_this_space():
    from edgenas.nas.benchmark import load_benchmark

    bench = load_benchmark(SHARED / "fbnet", space="fbnet")
    assert len(bench.archs) == 5000 and len(bench.devices) == 13 and not bench.accuracy
    assert np.isfinite(bench.latency["pixel3"]).all()
