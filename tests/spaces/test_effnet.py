"""The EfficientNet space against its definition (../shared/benchmarks/effnet/README.md)."""
import csv
import itertools

import numpy as np
import pytest
import torch

from edgenas.errors import EdgenasError
from edgenas.spaces import configure, get_space
from edgenas.spaces.effnet.blocks import MAX_LAYERS

from ..conftest import SHARED, pytorch_macs

B0 = "e1k3l1se-e6k3l2se-e6k5l2se-e6k3l3se-e6k5l3se-e6k5l4se-e6k3l1se"


@pytest.fixture(scope="module")
def effnet():
    return get_space("effnet")


def test_strings_encodings_and_choices(effnet):
    arch = effnet.sample(1, seed=3)[0]
    assert effnet.canonical(f" {arch.upper()} ".replace("-", " - ")) == arch
    x = effnet.encode(arch)
    assert x.shape == (sum(effnet.decisions),) == (71,) and x.sum() == 28, "e, k, l and se one-hot per block"
    assert effnet.decode(x) == arch and effnet.decode(effnet.encode(B0)) == B0
    assert effnet.size == 36 ** 6 * 48 and 1.0e11 < effnet.size < 1.1e11, "the README's 1.0e11"
    assert effnet.input_shape == (1, 3, 224, 224) and effnet.config.num_classes == 1000, "the registered default"


@pytest.mark.parametrize("arch, message", [
    (B0.rsplit("-", 1)[0], "expected 7 blocks joined by '-', got 6"),
    (B0.replace("e1k3l1se", "e2k3l1se"), "block 0 'e2k3l1se': expansion e 2 is not one of 1, 4, 6"),
    (B0.replace("e6k5l4se", "e6k7l4se"), "block 5 'e6k7l4se': kernel k 7 is not one of 3, 5"),
    (B0.replace("e6k3l3se", "e6k3l4se", 1), "block 3 'e6k3l4se': layer count l 4 is not one of 1, 2, 3"),
    (B0.replace("e6k5l4se", "e6k5l5se"), "block 5 'e6k5l5se': layer count l 5 is not one of 1, 2, 3, 4"),
    (B0.replace("e1k3l1se", "e1k3se"), "block 0 'e1k3se' must read eEkKlL or eEkKlLse"),
    ("", "is empty"),
])
def test_bad_arch_strings(effnet, arch, message):
    with pytest.raises(EdgenasError, match=message) as e:
        effnet.canonical(arch)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("config, message", [({"input_size": 0}, "input_size must be a positive"),
                                             ({"input_width": 2.5}, "input_width must be a positive"),
                                             ({"num_classes": True}, "num_classes must be a positive")])
def test_bad_configurations(config, message):
    with pytest.raises(EdgenasError, match=message):
        get_space("effnet", **config)


def test_it_samples_and_refuses_to_enumerate(effnet):
    archs = effnet.sample(50, seed=0)
    assert len(set(archs)) == 50 and effnet.sample(20, seed=0) == archs[:20]
    with pytest.raises(EdgenasError, match="too many to list"):
        next(iter(effnet.enumerate()))
    assert not effnet.enumerable


def test_the_network_has_the_readmes_shapes():
    sp = get_space("effnet", input_size=64, input_width=48)  # not square: every side follows its own strides
    net = sp.build(B0)
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for layer in net.layers]
    with torch.no_grad():
        out = net(torch.zeros(sp.input_shape))
    for h in hooks:
        h.remove()
    # B0's layers [1, 2, 2, 3, 3, 4, 1], channels [16, 24, 40, 80, 112, 192, 320], strides [1, 2, 2, 2, 1, 2, 1]
    # after the stride-2 stem: 64x48 -> 32x24 -> 16x12 -> 8x6 -> 4x3 -> 2x2 -> 1x1
    expected = ([(16, 32, 24)] + [(24, 16, 12)] * 2 + [(40, 8, 6)] * 2 + [(80, 4, 3)] * 3 + [(112, 4, 3)] * 3
                + [(192, 2, 2)] * 4 + [(320, 2, 2)])
    assert shapes == expected
    assert out.shape == (1, 1000) and net.head[0].out_channels == 1280
    squeeze = net.layers[1].body[2].gate[1]  # layer 1 of block 1 takes 16 channels: squeeze to 16 // 4
    assert (squeeze.in_channels, squeeze.out_channels) == (96, 4)


def test_an_untrained_network_carries_signal_to_its_logits(effnet):
    """With PyTorch's initial batch-norm statistics the logits would be the classifier's bias alone (1e-14
    apart): runtimes would agree whatever they computed."""
    x = torch.randn(2, *effnet.input_shape[1:], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = effnet.build(B0)(x)
        again = effnet.build(B0)(x)
    assert y.std() > 0.05 and (y[0] - y[1]).abs().max() > 0.05
    assert torch.equal(y, again), "the same seed builds the same network"


def test_parameters_are_efficientnet_b0s_and_pytorchs(effnet):
    assert effnet.costs(B0).params == 5_288_548, "EfficientNet-B0's 5.29 M"
    for arch in [B0, *effnet.sample(4, seed=2)]:
        assert effnet.costs(arch).params == sum(p.numel() for p in effnet.build(arch).parameters())
    assert get_space("effnet", input_size=64, input_width=32).costs(B0).params == 5_288_548, "size-independent"


@pytest.mark.skipif(not (SHARED / "effnet").is_dir(), reason="needs ../shared/benchmarks/effnet")
def test_parameters_equal_the_tables_mparams(effnet):
    archs = {r["index"]: r["arch"] for r in csv.DictReader(open(SHARED / "effnet" / "archs.csv"))}
    mparams = {r["index"]: float(r["mparams"]) for r in csv.DictReader(open(SHARED / "effnet" / "costs.csv"))}
    sample = sorted(np.random.default_rng(0).choice(sorted(archs, key=int), 500, replace=False), key=int)
    wrong = [(i, archs[i]) for i in sample if round(effnet.costs(archs[i]).params / 1e6, 6) != mparams[i]]
    assert not wrong, f"parameter counts differ from the table's mparams: {wrong[:3]}"


def test_flops_are_the_deployed_networks():
    sp = get_space("effnet", input_size=48, input_width=40)
    for arch in [B0, *sp.sample(2, seed=4)]:
        assert sp.costs(arch).flops == 2 * pytorch_macs(sp.build(arch), sp.input_shape)
    assert get_space("effnet").costs(B0).flops == 2 * 385_814_752, "B0's 0.39 GMACs at 224x224"
    # the stem's output (32x112x112) and the first depthwise output beside it, at least
    assert get_space("effnet").costs(B0).peak_activation_bytes >= 4 * 2 * 32 * 112 * 112


def test_tuning_archs_cover_every_kind_of_layer(effnet):
    """A kernel depends on the layer's place (block, first or later layer) and its block's e, k and se."""
    def kinds(arch):
        return {(b, i > 0, block.expand, block.kernel, block.se)
                for b, block in enumerate(effnet.parse(arch)) for i in range(block.layers)}

    covered = set().union(*(kinds(arch) for arch in effnet.tuning_archs()))
    assert covered == {(b, later, e, k, se) for b in range(7) for later in (False, True)
                       for e, k, se in itertools.product((1, 4, 6), (3, 5), (False, True))}
    assert all(block.layers == MAX_LAYERS[b] for arch in effnet.tuning_archs()
               for b, block in enumerate(effnet.parse(arch)))


def test_exports_to_onnx_matching_pytorch(tmp_path):
    from edgenas.compiler.export import export_onnx
    from edgenas.compiler.tune import randomize_batch_norms

    sp = get_space("effnet", input_size=40, input_width=56, num_classes=10)
    exported = export_onnx(randomize_batch_norms(sp.build(B0)), sp.input_shape, tmp_path / "effnet.onnx")
    assert exported.output_shapes == ((1, 10),) and exported.max_abs_error < 1e-3


class _Images:
    """What `configure` reads of a dataset."""

    def __init__(self, shape):
        self.image_shape, self.classes, self.source = shape, ("a", "b", "c"), "images.npz"


def test_configure_takes_non_square_images_where_the_space_does():
    sp = configure("effnet", 2, _Images((1, 60, 80)))
    assert sp.input_shape == (2, 1, 60, 80) and sp.config.num_classes == 3
    assert configure(sp, 1, _Images((3, 32, 32))).input_shape == (1, 3, 32, 32), "a new square set replaces both"
    with pytest.raises(EdgenasError, match="images.npz: images are 60x80; search space 'nb201' takes square images "
                                           "only; resize them, or use --space effnet"):
        configure("nb201", 1, _Images((1, 60, 80)))


@pytest.mark.skipif(not (SHARED / "effnet").is_dir(), reason="needs ../shared/benchmarks/effnet")
def test_the_shared_table_reads_in_this_space():
    from edgenas.nas.benchmark import load_benchmark

    bench = load_benchmark(SHARED / "effnet", space="effnet")
    assert len(bench.archs) == 5089 and set(bench.devices) == {"zcu102", "a100", "rtx3090", "tpuv2"}
    assert set(bench.tasks) >= {"imagenet_top1"} and np.isfinite(bench.latency["a100"]).all()
