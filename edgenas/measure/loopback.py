"""A fleet on this machine: a real TVM RPC tracker and real RPC servers (`python -m tvm.exec.rpc_tracker`,
`python -m tvm.exec.rpc_server`) bound to 127.0.0.1, each in a process group of its own, so that a whole
device can be killed, stopped or resumed. What the tests, `edgenas bench fleet` and `examples/` use in place of
boards. An RPC server runs any code it is sent: these listen on loopback only.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from ..errors import EdgenasError
from .tracker import status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackFleet:
    def __init__(self, start_timeout_s: float = 60.0):
        self.start_timeout_s = start_timeout_s
        self.procs: list[subprocess.Popen] = []
        self.servers: dict[str, subprocess.Popen] = {}  # HOST:PORT -> the server's process
        port = free_port()
        self.tracker = f"127.0.0.1:{port}"
        self._start(["tvm.exec.rpc_tracker", "--port", str(port), "--port-end", str(port + 1)])
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:  # not listening yet
                if time.monotonic() > deadline:
                    self.close()
                    raise EdgenasError(f"the RPC tracker on {self.tracker} did not start in {start_timeout_s:g} s")
                time.sleep(0.2)

    def __enter__(self) -> "LoopbackFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, args: list[str], prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        proc = subprocess.Popen([*prefix, sys.executable, "-m", *args, "--host", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def add_servers(self, key: str, count: int = 1, prefix: tuple[str, ...] = ()) -> list[str]:
        """Start `count` RPC servers under `key` (their command behind `prefix`, e.g. taskset) and wait until
        the tracker lists them all; return their HOST:PORT addresses."""
        ports = [free_port() for _ in range(count)]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        for address, port in zip(addresses, ports):
            self.servers[address] = self._start(["tvm.exec.rpc_server", "--port", str(port), "--port-end",
                                                 str(port + 1), "--tracker", self.tracker, "--key", key], prefix)
        deadline = time.monotonic() + self.start_timeout_s
        while not set(addresses) <= set(getattr(status(self.tracker).get(key), "servers", ())):
            if time.monotonic() > deadline:
                raise EdgenasError(f"RPC servers under key '{key}' did not register with {self.tracker} in "
                                   f"{self.start_timeout_s:g} s")
            time.sleep(0.2)
        return addresses

    def busy(self, address: str) -> bool:
        """Whether the server is serving a session: TVM's rpc_server runs in a worker process that forks a
        child for each session."""
        import psutil

        try:
            return len(psutil.Process(self.servers[address].pid).children(recursive=True)) >= 2
        except psutil.NoSuchProcess:
            return False

    def signal(self, address: str, sig: int) -> None:
        """Send `sig` to the whole server (its process group): SIGKILL unplugs it, SIGSTOP hangs it."""
        os.killpg(self.servers[address].pid, sig)

    def close(self) -> None:
        """End the tracker and every server, whole process groups (they work in child processes)."""
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.procs.clear()
