import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from edgenas.errors import EdgenasError
from edgenas.nas.checkpoint import Trained, shipped
from edgenas.nas.conditioning import device_descriptors
from edgenas.nas.metatrain import meta_train


@pytest.fixture(scope="module")
def trained(synthetic_trained):
    return synthetic_trained


def test_an_unseen_device_is_predicted_from_ten_measurements(trained):
    bench, model = trained
    x, truth = bench.encodings(), bench.latency["dev5"]
    picks = np.random.default_rng(0).choice(len(x), 10, replace=False)
    with_support = model.model.predict(device_descriptors("dev5"), x[picks], truth[picks], x).ms
    without = model.model.predict(device_descriptors("dev5"), x[:0], truth[:0], x).ms
    rho = spearmanr(with_support, truth).statistic
    assert rho > 0.9
    assert rho > spearmanr(without, truth).statistic
    assert np.mean(np.abs(with_support / truth - 1)) < 0.1, "with a support set, predictions are in ms"


def test_checkpoint_round_trip(trained, tmp_path):
    bench, model = trained
    model.save(tmp_path / "m.pt")
    torch.load(tmp_path / "m.pt", weights_only=True)
    again = Trained.load(tmp_path / "m.pt")
    x = bench.encodings()
    args = (device_descriptors("dev5"), x[:4], bench.latency["dev5"][:4], x[:50])
    assert np.allclose(again.model.predict(*args).high, model.model.predict(*args).high)
    assert again.devices == [f"dev{j}" for j in range(5)]


def test_shipped_checkpoint_is_registered_with_its_space(nb201, trained, tmp_path):
    assert nb201.checkpoint.stat().st_size < 20 * 2**20
    models = shipped(nb201)
    assert len(models.devices) == 13 and models.space == "nb201"
    other = Trained(**{**models.__dict__, "space": "fbnet"})
    other.save(tmp_path / "fbnet.pt")
    with pytest.raises(EdgenasError, match="meta-trained for search space 'fbnet', not 'nb201'"):
        Trained.load(tmp_path / "fbnet.pt", "nb201")


def test_meta_train_refuses_unknown_devices(trained):
    bench, _ = trained
    with pytest.raises(EdgenasError, match="device 'dev9' is not a column"):
        meta_train(bench, ["dev0", "dev9"])


def test_a_broken_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(EdgenasError, match="cannot load checkpoint .*bad.pt .*run edgenas meta-train") as e:
        Trained.load(tmp_path / "bad.pt")
    assert "\n" not in str(e.value)
    with pytest.raises(EdgenasError, match="cannot load checkpoint"):
        Trained.load(tmp_path / "missing.pt")
