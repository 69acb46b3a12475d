"""Shared fixtures: small real things (NB201 networks with non-trivial batch norms, YAML files, stores)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from edgenas.spaces import get_space

# The cell of NB201's best-known CIFAR-10 architecture family: convolutions, a pool and skips.
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# Node 1 is zero (its only edge is `none`), so conv(node 1) is a constant folded into node 3, and node 2
# feeds nothing (dead code): both must vanish from the deployed graph and from the costs.
ARCH_CONST = "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
ARCH_DEGENERATE = "|none~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"


def randomize_batch_norms(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every batch norm non-trivial statistics, so folding and constant paths are really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def rpc_tracker():
    """A real TVM RPC tracker with one RPC server under the key 'loopback', both bound to 127.0.0.1."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tvm import rpc

    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port",
                               str(port), "--port-end", str(port + 1)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:  # not listening yet
                assert time.time() < deadline, "the RPC tracker did not start"
                time.sleep(0.2)
        server_port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1",
                                       "--port", str(server_port), "--port-end", str(server_port + 1),
                                       "--tracker", f"127.0.0.1:{port}", "--key", "loopback"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        while "loopback" not in rpc.connect_tracker("127.0.0.1", port).summary()["queue_info"]:
            assert time.time() < deadline, "the RPC server did not register"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:  # the tracker and server do their work in child processes: end each whole process group
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
