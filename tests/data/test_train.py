"""Training on user data: the three data formats, their errors, the training loop (split, seed, early
stopping) and `compile --data`, which compiles the trained weights. Real data: scikit-learn's digits."""
import pickle

import numpy as np
import pytest
import torch

import edgenas
from edgenas.data.datasets import load_dataset, preprocess
from edgenas.data.train import split, train
from edgenas.errors import EdgenasError

from ..conftest import ARCH


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) as a .npz of N x H x W floats."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, x=(d.images / 16.0).astype(np.float32), y=d.target)
    return path


def test_npz_layouts_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=nhwc, y=np.array(["cat", "dog"] * 3))
    d = load_dataset(tmp_path / "a.npz")
    assert d.x.shape == (6, 3, 8, 8) and d.x.dtype == np.float32 and d.x.max() <= 1.0
    np.testing.assert_allclose(d.x[2, 1], nhwc[2, :, :, 1] / 255.0)  # transposed, not reshaped
    assert d.classes == ("cat", "dog") and d.y.tolist() == [0, 1] * 3
    assert (d.preprocessing["dtype"], d.preprocessing["layout"], d.preprocessing["scale"]) == ("uint8", "NHWC", 1 / 255)
    assert d.preprocessing["description"] == \
        "uint8 data in NHWC, times 0.00392157 (1/255), transposed to NCHW, as float32"
    np.testing.assert_array_equal(preprocess(nhwc, d.preprocessing), d.x)  # more data stored so: prepared alike
    np.savez(tmp_path / "b.npz", x=rng.random((4, 8, 8)), y=[0, 1, 0, 1])
    b = load_dataset(tmp_path / "b.npz")
    assert b.image_shape == (1, 8, 8) and (b.preprocessing["layout"], b.preprocessing["scale"]) == ("NHW", 1.0)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("ants", "bees"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "bees" / "big.png")
    d = load_dataset(tmp_path)
    assert d.x.shape == (7, 3, 12, 12) and d.classes == ("ants", "bees") and d.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert "1 images resized to 12x12" in d.source
    assert d.preprocessing["description"].startswith("image files decoded as RGB, resized to 12x12, uint8 pixels")
    assert d.preprocessing["layout"] == "NHWC" and d.preprocessing["image_mode"] == "RGB"
    (tmp_path / "bees" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(EdgenasError, match="cannot read image .*broken.png"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("cifar100", [False, True])
def test_cifar_python_batches(tmp_path, cifar100):
    rng = np.random.default_rng(0)
    key = b"fine_labels" if cifar100 else b"labels"

    def batch(name, n):
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         key: rng.integers(0, 3, n).tolist()}, f)

    if cifar100:
        batch("train", 12)
        batch("test", 5)
        meta = ("meta", {b"fine_label_names": [b"apple", b"bear", b"cloud"]})
    else:
        batch("data_batch_1", 6)
        batch("data_batch_2", 6)
        batch("test_batch", 5)
        meta = ("batches.meta", {b"label_names": [b"plane", b"car", b"bird"]})
    with open(tmp_path / meta[0], "wb") as f:
        pickle.dump(meta[1], f)
    d = load_dataset(tmp_path)
    assert d.x.shape == (12, 3, 32, 32) and d.test[0].shape == (5, 3, 32, 32)
    assert d.classes == (("apple", "bear", "cloud") if cifar100 else ("plane", "car", "bird"))


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 8, 8))}, "has no array y"),
    ({"x": np.zeros((4, 8, 8)), "y": [0, 1, 0]}, "4 images but 3 labels"),
    ({"x": np.zeros((4, 8, 8)), "y": [1, 1, 1, 1]}, "only one class"),
    ({"x": np.zeros((3, 8, 8)), "y": [0, 1, 0]}, "class '1' has 1 sample"),
    ({"x": np.full((4, 8, 8), np.nan), "y": [0, 1, 0, 1]}, "NaN"),
])
def test_bad_data_is_refused_in_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(EdgenasError, match=message) as e:
        load_dataset(tmp_path / "d.npz")
    assert "\n" not in str(e.value)


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(EdgenasError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(EdgenasError, match="not a .npz"):
        load_dataset(tmp_path / "data.csv")
    (tmp_path / "only").mkdir()
    with pytest.raises(EdgenasError, match="one sub-folder per class"):
        load_dataset(tmp_path)


def test_split_is_per_class_and_seeded():
    y = np.array([0] * 10 + [1] * 5)
    train_idx, val_idx = split(y, 0.2, seed=3)
    assert sorted(np.r_[train_idx, val_idx].tolist()) == list(range(15))
    assert (y[val_idx] == 0).sum() == 2 and (y[val_idx] == 1).sum() == 1
    assert split(y, 0.2, seed=3)[1].tolist() == val_idx.tolist()


def test_training_learns_is_reproducible_and_stops_early(small_digits):
    space, data = small_digits
    said = []
    a = train(lambda: space.build(ARCH), data, epochs=3, seed=0, log=said.append)
    assert a.val_accuracy > 80 and a.epochs_run == 3 and len(said) == 3 and "val" in said[-1]
    b = train(lambda: space.build(ARCH), data, epochs=3, seed=0)
    assert b.val_accuracy == a.val_accuracy
    # Nothing improves with a zero learning rate: training stops after `patience` epochs without progress.
    c = train(lambda: space.build(ARCH), data, epochs=10, seed=0, patience=2, lr=0.0)
    assert c.epochs_run == 3 and c.best_epoch == 1
    # The trained network takes the data as it is stored: its first layer standardises.
    x = torch.from_numpy(data.x[:4])
    assert torch.allclose(a.model[0](x).mean(), torch.tensor(0.0), atol=1.0)


@pytest.fixture(scope="module")
def small_digits(digits, small):
    from edgenas.device.profile import PROFILES
    from edgenas.spaces import configure

    data = load_dataset(digits)
    return configure(small, PROFILES.get("host").batch, data), data


def test_compile_with_data_compiles_the_trained_weights(digits, small, tmp_path):
    import tvm
    from tvm import relax

    from edgenas.pipeline.compile import compile_artifact

    art = compile_artifact("host", ARCH, tmp_path, space=small, measure_latency=False, data=digits, epochs=3)
    t = art.report["training"]
    assert t["val_accuracy"] > 80 and t["samples"] == {"train": 1438, "val": 359} and len(t["classes"]) == 10
    assert art.manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert art.manifest["outputs"][0]["classes"] == [str(c) for c in range(10)]
    assert art.manifest["inputs"][0]["preprocessing"]["layout"] == "NHW"  # the digits are stored N x 8 x 8
    assert '#define EDGENAS_INPUT0_STORED_LAYOUT "NHW"' in (tmp_path / "model.h").read_text()
    model = edgenas.load(tmp_path)
    assert model.stored_input() == ((1, 8, 8), "float32")
    stored = np.load(digits)["x"][:1]
    np.testing.assert_array_equal(model.predict(stored), model.predict(stored[:, None]))
    # The compiled library classifies real digits as well as the trained network does.
    data = load_dataset(digits)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(tmp_path / "model.so")), tvm.cpu())
    _, val = split(data.y, 0.2, seed=0)
    right = sum(int(vm["main"](tvm.runtime.tensor(data.x[i:i + 1])).numpy().argmax() == data.y[i]) for i in val)
    assert 100.0 * right / len(val) == pytest.approx(t["val_accuracy"], abs=0.3)


def test_accuracy_shots_condition_generation_and_the_pick_is_trained(digits, small, small_digits, tmp_path):
    """A predict-only board with stored measurements at the data's input shape: 3 sampled architectures are
    trained briefly, their accuracies condition the generation, and the pick is trained and compiled."""
    from edgenas.measure.timing import Measurement, Stats
    from edgenas.pipeline.budget import compile_for_budget
    from edgenas.store import Store

    space, _ = small_digits
    db = tmp_path / "db.sqlite"
    stored = []
    with Store(db) as store:
        for arch in list(space.enumerate())[500:15625:1500]:
            ms = 1.0 + 0.5 * space.costs(arch).flops / 1e6
            stored.append(ms)
            store.add("raspi4", "nb201", arch, space.input_shape, {},
                      Measurement("tvm", "0.27", 4, Stats.of([ms] * 3, number=1, max_spread=0.05), None))
    said = []
    art = compile_for_budget("raspi4", float(np.median(stored)), tmp_path / "pi", space=small, db=db, data=digits,
                             epochs=2, accuracy_shots=3, shot_epochs=1, log=said.append)
    shots = art.report["accuracy_shots"]
    assert art.report["search"]["accuracy_shots_used"] == 3 and len(shots["sampled"]) == 3
    assert all(0 <= s["val_accuracy"] <= 100 for s in shots["sampled"]) and 0 <= shots["pick_beats"] <= 3
    assert art.report["training"]["val_accuracy"] > 50 and art.manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert sum("accuracy shot" in m for m in said) == 3


def test_accuracy_shots_need_data(tmp_path):
    from click.testing import CliRunner

    from edgenas.cli import cli

    result = CliRunner().invoke(cli, ["compile", "--target", "host", "--latency-ms", "5", "--accuracy-shots", "3",
                                      "-o", str(tmp_path)])
    assert result.exit_code == 2 and "give it with --data" in result.output
