"""Shared fixtures: small real things (NB201 networks, YAML files, stores, a loopback tracker, artifacts)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgenas.measure.loopback import LoopbackFleet
from edgenas.nas.metatrain import MetaTrainConfig
from edgenas.spaces import get_space

# The cell of NB201's best-known CIFAR-10 architecture family: convolutions, a pool and skips.
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# Node 1 is zero (its only edge is `none`), so conv(node 1) is a constant folded into node 3, and node 2
# feeds nothing (dead code): both must vanish from the deployed graph and from the costs.
ARCH_CONST = "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
ARCH_DEGENERATE = "|none~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"


def fails_with(message: str, *args: str) -> str:
    """Run `edgenas ARGS` and check that it fails the way users are promised: exit 2, one `error:` line naming
    `message`, no traceback."""
    result = subprocess.run([sys.executable, "-m", "edgenas", *args], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    return err


def pytorch_macs(net, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the convolutions and linear layers that run when `net` takes an input of
    `input_shape`, counted by PyTorch's forward hooks."""
    import torch

    macs = []

    def count(m, i, o):
        if isinstance(m, torch.nn.Conv2d):
            macs.append(o.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, torch.nn.Linear):
            macs.append(o.numel() * m.in_features)

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    with torch.no_grad():
        net(torch.zeros(input_shape))
    for h in hooks:
        h.remove()
    return sum(macs)


@pytest.fixture(scope="session", autouse=True)
def own_tuning_dir(tmp_path_factory):
    """Compiling uses the target's tuning database when one exists; tests never read the user's, and use the
    one shipped with edgenas only where they say so."""
    import os

    own = {"EDGENAS_TUNING_DIR": str(tmp_path_factory.mktemp("tuning-cache")), "EDGENAS_NO_SHIPPED_TUNING": "1"}
    before = {k: os.environ.get(k) for k in own}
    os.environ.update(own)
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="session")
def small():
    """A small NB201 network (8 channels, 1 cell per stage) for tests that only need the structure."""
    return get_space("nb201", channels=8, cells_per_stage=1)


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML file into a fresh folder and return its path."""
    def write(name: str, text: str, folder: str = "profiles") -> Path:
        d = tmp_path / folder
        d.mkdir(exist_ok=True)
        path = d / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path
    return write


@pytest.fixture(scope="session")
def rpc_tracker():
    """A real TVM RPC tracker with one RPC server under the key 'loopback', both bound to 127.0.0.1."""
    fleet = LoopbackFleet()
    try:
        fleet.add_servers("loopback")
        yield fleet.tracker
    finally:
        fleet.close()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
TINY = MetaTrainConfig(steps=300, episodes=1000)  # meta-training for tests: seconds, and it still learns
SHARED_NB201 = SHARED / "nb201"


def old_onnx(path: Path, op: str = "Relu", batch: int | str = "N", outputs: int = 1) -> Path:
    """An ONNX file as old exporters wrote them, not made by edgenas: opset 9, IR version 3, every initializer also
    listed as a graph input, a dynamic batch dimension `batch`; Conv(3->8, 3x3) -> `op` -> GlobalAveragePool ->
    Flatten -> Gemm(8->5) on 3 x 12 x 16 (non-square) images; with `outputs` 2, the pooled features are an
    output too."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (5, 8)), ("b2", (5,)))]
    nodes = [helper.make_node("Conv", ["data", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node(op, ["c"], ["r"], name="act"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["out"], transB=1, name="fc")]
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 12, 16])] + \
        [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in weights]
    outs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 5])] + \
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, [batch, 8])] * (outputs - 1)
    graph = helper.make_graph(nodes, "old", inputs, outs, weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=3), path)
    return path


@pytest.fixture(scope="session")
def synthetic_benchmark(tmp_path_factory):
    """A benchmark folder in the shared format: 800 NB201 cells, 6 devices whose latency is a sum of
    per-operation costs that vary between devices around a common profile, plus noise and two tasks."""
    import numpy as np

    space = get_space("nb201")
    rng = np.random.default_rng(0)
    picks = rng.choice(space.size, size=800, replace=False)
    archs = [space.from_index(int(i)) for i in picks]
    x = np.stack([space.encode(a) for a in archs])
    op_cost = np.array([0.05, 0.1, 1.0, 3.0, 0.6])  # none, skip, conv 1x1, conv 3x3, pool (relative)
    folder = tmp_path_factory.mktemp("bench")
    devices = {}
    for j in range(6):  # devices differ in speed, in the relative cost of each op type, and a little per edge
        per_op = op_cost * np.exp(0.3 * rng.standard_normal(5))
        costs = np.tile(per_op, 6) * np.exp(0.05 * rng.standard_normal(30)) * rng.uniform(0.5, 2)
        clean = x @ costs + rng.uniform(1, 3)
        devices[f"dev{j}"] = clean * (1 + 0.01 * rng.standard_normal(len(clean)))
    (folder / "archs.csv").write_text("index,arch\n" + "".join(f"{i},{a}\n" for i, a in enumerate(archs)))
    header = "index," + ",".join(devices)
    rows = [f"{i}," + ",".join(f"{v[i]:.5f}" for v in devices.values()) for i in range(len(archs))]
    (folder / "latency_ms.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    acc = 60 + 10 * x[:, 3::5].sum(1) / 6 + rng.normal(0, 1, len(archs))
    (folder / "accuracy.csv").write_text("index,cifar10,cifar100\n" + "".join(
        f"{i},{acc[i]:.3f},{acc[i] - 20:.3f}\n" for i in range(len(archs))))
    return folder


@pytest.fixture(scope="session")
def synthetic_trained(synthetic_benchmark):
    """The synthetic benchmark and models meta-trained briefly on its devices dev0..dev4 (dev5 is unseen)."""
    from edgenas.nas.benchmark import load_benchmark
    from edgenas.nas.metatrain import meta_train

    bench = load_benchmark(synthetic_benchmark)
    return bench, meta_train(bench, [f"dev{j}" for j in range(5)], TINY)


@pytest.fixture(scope="session")
def small_artifact(small, tmp_path_factory):
    """A real artifact of the small network for this machine (not measured)."""
    from edgenas.pipeline.compile import compile_artifact

    return compile_artifact("host", ARCH, tmp_path_factory.mktemp("host-artifact"), space=small, measure_latency=False)


@pytest.fixture(scope="session")
def small_raspi4_artifact(small, tmp_path_factory):
    """The same network and weights cross-compiled for the raspi4 profile (an aarch64 model.so)."""
    from edgenas.pipeline.compile import compile_artifact

    return compile_artifact("raspi4", ARCH, tmp_path_factory.mktemp("raspi4-artifact"), space=small,
                            measure_latency=False)


@pytest.fixture(autouse=True)
def own_registry_folders():
    """`--profiles DIR` / `--targets DIR` add folders to the process-wide registries: a CLI run lasts one
    process, a test must not leave its folders (and their same-named profiles) to the next test."""
    from edgenas.device.profile import PROFILES
    from edgenas.device.target import TARGETS

    before = {r: list(r.extra_dirs) for r in (PROFILES, TARGETS)}
    yield
    for registry, dirs in before.items():
        registry.extra_dirs[:] = dirs
