import numpy as np
import torch

from edgenas.device.profile import PROFILES
from edgenas.nas.conditioning import (
    DESCRIPTOR_DIM,
    DESCRIPTORS,
    DescriptorEncoder,
    SetEncoder,
    descriptor_vector,
)


def pairs(batch, k, dim=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, k, dim, generator=g), torch.rand(batch, k, generator=g)


def test_set_encoder_takes_zero_one_and_many_pairs():
    torch.manual_seed(0)
    enc = SetEncoder(30).eval()
    x0, y0 = pairs(2, 0)
    empty = enc(x0, y0, torch.zeros(2, 0, dtype=torch.bool))
    assert empty.shape == (2, 64) and torch.equal(empty[0], empty[1])
    for k in (1, 7, 50):
        x, y = pairs(2, k)
        out = enc(x, y, torch.ones(2, k, dtype=torch.bool))
        assert out.shape == (2, 64) and torch.isfinite(out).all()
        assert not torch.allclose(out[0], empty[0])


def test_set_encoder_ignores_order_and_padding():
    torch.manual_seed(0)
    enc = SetEncoder(30).eval()
    x, y = pairs(1, 5)
    mask = torch.ones(1, 5, dtype=torch.bool)
    base = enc(x, y, mask)
    perm = torch.randperm(5)
    assert torch.allclose(enc(x[:, perm], y[:, perm], mask), base, atol=1e-5)
    px, py = pairs(1, 3, seed=1)
    padded = enc(torch.cat([x, px], 1), torch.cat([y, py], 1), torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)], 1))
    assert torch.allclose(padded, base, atol=1e-5)
    # a batch mixing an empty set with a full one: the empty row is the learned empty vector
    mixed = enc(torch.cat([x, x]), torch.cat([y, y]), torch.stack([mask[0], torch.zeros(5, dtype=torch.bool)]))
    assert torch.allclose(mixed[0], base[0], atol=1e-5) and torch.equal(mixed[1], enc.empty)


def test_descriptors_mask_what_a_profile_lacks():
    raw = descriptor_vector(PROFILES.get("raspi4"))
    n = len(DESCRIPTORS)
    assert raw.shape == (DESCRIPTOR_DIM,)
    mask = dict(zip(DESCRIPTORS, raw[n:2 * n]))
    assert mask["cores"] == 1 and mask["l3_kb"] == 0
    assert np.count_nonzero(descriptor_vector(None)) == 0
    enc = DescriptorEncoder()
    enc.fit(np.stack([descriptor_vector(PROFILES.get(p)) for p in ("raspi4", "a100", "silver_4114")]))
    out = enc(torch.as_tensor(np.stack([raw, descriptor_vector(None)])))
    assert out.shape == (2, 32) and torch.isfinite(out).all()
