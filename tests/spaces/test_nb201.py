import random

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgenas.errors import EdgenasError
from edgenas.spaces import get_space
from edgenas.spaces.nb201.cell import node_states, used_nodes

from ..conftest import ARCH, ARCH_CONST, ARCH_DEGENERATE


def test_enumeration_covers_the_space_once(nb201):
    archs = list(nb201.enumerate())
    assert len(archs) == 15625 == nb201.size
    assert len(set(archs)) == 15625
    assert all(nb201.canonical(a) == a for a in archs[::97])
    assert [nb201.index(a) for a in archs[:300]] == list(range(300))
    assert nb201.from_index(nb201.index(ARCH)) == ARCH


def test_canonical_form_tolerates_spacing_and_edge_order(nb201):
    messy = " |nor_conv_3x3~0| + |avg_pool_3x3~1|nor_conv_3x3~0| + |skip_connect~2|nor_conv_3x3~1|skip_connect~0| "
    assert nb201.canonical(messy) == ARCH


@pytest.mark.parametrize("arch, message", [
    ("", "is empty"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 takes 2 edge(s)"),
    ("|conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "unknown operation 'conv_3x3'; did you mean 'nor_conv_3x3'?"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "node 1 can only take input from nodes 0..0"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "node 2 has two edges from node 0"),
    ("|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "must read OP~INDEX"),
    ("nor_conv_3x3~0+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "must be enclosed in '|'"),
])
def test_invalid_arch_strings_get_one_line_errors(nb201, arch, message):
    with pytest.raises(EdgenasError) as e:
        nb201.canonical(arch)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_invalid_network_config_is_refused():
    with pytest.raises(EdgenasError, match="divisible by 4"):
        get_space("nb201", input_size=30)
    with pytest.raises(EdgenasError, match="channels must be a positive whole number"):
        get_space("nb201", channels=0)
    with pytest.raises(EdgenasError, match="no search space 'nb210'; did you mean 'nb201'"):
        get_space("nb210")


def test_encoding_is_one_hot_per_edge(nb201):
    enc = nb201.encode(ARCH)
    assert enc.shape == (30,) and enc.dtype == np.float32
    assert np.array_equal(enc.reshape(6, 5).sum(axis=1), np.ones(6))
    assert not np.array_equal(enc, nb201.encode(ARCH_CONST))
    assert nb201.decode(enc) == nb201.canonical(ARCH), "decode inverts encode"


def test_liveness_of_nodes():
    from edgenas.spaces.nb201 import NB201
    ops = NB201().parse(ARCH_CONST)
    assert node_states(ops) == ["live", "zero", "live", "live"]
    assert used_nodes(ops) == {1, 3}
    assert node_states(NB201().parse(ARCH_DEGENERATE))[3] == "zero"


@pytest.mark.parametrize("config", [{}, {"channels": 8, "cells_per_stage": 2, "num_classes": 100, "batch": 2}])
def test_params_equal_pytorch_count(config):
    space = get_space("nb201", **config)
    for arch in random.Random(1).sample(list(space.enumerate()), 6) + [ARCH, ARCH_CONST]:
        model = space.build(arch)
        assert space.costs(arch).params == sum(p.numel() for p in model.parameters()), arch


def test_flops_equal_pytorch_count_when_every_path_is_live(small):
    live_ops = [a for a in small.enumerate() if "none" not in a]
    for arch in random.Random(2).sample(live_ops, 6) + [ARCH]:
        with FlopCounterMode(display=False) as counter:
            small.build(arch)(torch.randn(*small.input_shape))
        assert small.costs(arch).flops == counter.get_total_flops(), arch


def test_degenerate_network_is_a_constant(small):
    assert small.is_degenerate(ARCH_DEGENERATE)
    model = small.build(ARCH_DEGENERATE)
    with torch.no_grad():
        a, b = model(torch.randn(*small.input_shape)), model(torch.randn(*small.input_shape))
    assert torch.equal(a, b)
    assert small.costs(ARCH_DEGENERATE).flops == 0


def test_peak_activation_of_an_identity_cell_by_hand(nb201):
    # Each cell is node 3 = skip from the input: the peak is in the first reduction block, where the stage-0
    # tensor (16x32x32) is held while conv_a and conv_b (32x16x16 each) exist: 16384 + 2 * 8192 elements.
    identity = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert nb201.costs(identity).peak_activation_bytes == 4 * (16384 + 2 * 8192)
    assert get_space("nb201", batch=4).costs(identity).peak_activation_bytes == 4 * 4 * (16384 + 2 * 8192)


def test_peak_activation_grows_with_live_branches(nb201):
    # Node 1 is held while node 2 and node 3 are summed: more branches keep more tensors alive.
    wide = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    narrow = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert nb201.costs(wide).peak_activation_bytes > nb201.costs(narrow).peak_activation_bytes
    costs = nb201.costs(ARCH)
    assert costs.memory_mb == pytest.approx((4 * costs.params + costs.peak_activation_bytes) / 2**20)
