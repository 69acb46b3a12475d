"""The zoo's public CNNs are the published architectures: parameter counts of the reference implementations."""
import pytest
import torch

from edgenas.bench.zoo import ZOO


@pytest.mark.parametrize("name", list(ZOO))
def test_each_network_has_its_published_parameter_count_and_classifies(name):
    factory, params = ZOO[name]
    network = factory().eval()
    assert sum(p.numel() for p in network.parameters()) == params
    with torch.no_grad():
        assert network(torch.zeros(2, 3, 64, 64)).shape == (2, 1000)
