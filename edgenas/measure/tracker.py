"""TVM's RPC tracker as edgenas speaks to it: a `Remote` (tracker and key), what a tracker holds (`status`,
`devices`), and asking it for a free device of a key (`request_device`). Errors are one line naming the cause.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from ..errors import EdgenasError


@dataclass(frozen=True)
class Remote:
    """A device reached through TVM's RPC tracker: the tracker's HOST:PORT and the key the device serves."""

    tracker: str
    key: str
    device: str = "cpu"  # cpu or cuda, on the remote side
    timeout_s: float = 600.0  # the longest one session on a device may last (the server ends it then)
    call_timeout_s: float = 60.0  # the longest one RPC call may take before the device counts as hung
    cpus: tuple[int, ...] = ()  # the device's cores its threads share; () = TVM's big cores first (phones)


@dataclass(frozen=True)
class KeyStatus:
    key: str
    servers: tuple[str, ...]  # HOST:PORT of every RPC server registered under the key
    free: int  # servers waiting for a session
    pending: int  # requests waiting for a free server

    @property
    def busy(self) -> int:
        return max(0, len(self.servers) - self.free)


def status(tracker: str) -> dict[str, KeyStatus]:
    """Every key the tracker knows, with its servers, how many are free, and the requests waiting."""
    from tvm.rpc import base

    sock = open_tracker(tracker, timeout=10.0)
    try:
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        code, summary = base.recvjson(sock)
    except OSError as e:
        raise EdgenasError(f"the RPC tracker at {tracker} did not answer ({reason(e)}); check that it runs") from None
    finally:
        sock.close()
    servers: dict[str, list[str]] = {}
    for info in summary.get("server_info", []):
        key = info.get("key", "").partition(":")[2]  # "server:KEY"
        servers.setdefault(key, []).append(":".join(map(str, info.get("addr", ("?", "?")))))
    queues = summary.get("queue_info", {})
    return {k: KeyStatus(k, tuple(sorted(servers.get(k, []))), queues.get(k, {}).get("free", 0),
                         queues.get(k, {}).get("pending", 0))
            for k in sorted(set(servers) | set(queues))}


def status_dict(tracker: str, keys: dict[str, KeyStatus]) -> dict:
    """`status` as `edgenas fleet status --json` prints it."""
    return {"tracker": tracker, "keys": {k: {"devices": list(v.servers), "free": v.free, "busy": v.busy,
                                             "pending": v.pending} for k, v in keys.items()}}


def status_table(tracker: str, keys: dict[str, KeyStatus]) -> str:
    """`status` as `edgenas fleet status` prints it: a row per key, then its devices."""
    lines = [f"tracker {tracker}: {len(keys)} keys, {sum(len(v.servers) for v in keys.values())} devices",
             f"{'key':<20} {'devices':>7} {'free':>5} {'busy':>5} {'waiting':>7}"]
    for k, v in keys.items():
        lines.append(f"{k:<20} {len(v.servers):7d} {v.free:5d} {v.busy:5d} {v.pending:7d}")
        lines.extend(f"  {server}" for server in v.servers)
    return "\n".join(lines)


def devices(remote: Remote) -> tuple[str, ...]:
    """The servers registered under the remote's key; a clear error when the tracker is down or has none."""
    keys = status(remote.tracker)
    if remote.key not in keys or not keys[remote.key].servers:
        raise EdgenasError(f"no device is registered under key '{remote.key}' at {remote.tracker} (keys: "
                           f"{', '.join(k for k in keys if keys[k].servers) or 'none'}); start an rpc_server with "
                           f"--key {remote.key}")
    return keys[remote.key].servers


def open_tracker(tracker: str, timeout: float) -> socket.socket:
    """A connection to the tracker after the protocol's handshake; a clear error when it is down or not one."""
    from tvm.rpc import base

    host, _, port = tracker.rpartition(":")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError) as e:
        raise EdgenasError(f"cannot reach the RPC tracker at {tracker} ({reason(e)}); start it (python -m "
                           f"tvm.exec.rpc_tracker --host 127.0.0.1) or fix measure.tracker in the profile") from None
    try:
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", base.recvall(sock, 4))[0]
    except OSError as e:
        sock.close()
        raise EdgenasError(f"{tracker} accepts connections but does not answer as a TVM RPC tracker "
                           f"({reason(e)}); check the address") from None
    if magic != base.RPC_TRACKER_MAGIC:
        sock.close()
        raise EdgenasError(f"{tracker} is not a TVM RPC tracker (an RPC server's port?); give the tracker's address")
    return sock


def reason(e: BaseException) -> str:
    """A short reason for a socket or RPC error: its OS error text, else the last line of its message (TVM puts
    the cause there, after tracebacks and "Error caught from RPC call:"), else its type."""
    if isinstance(e, socket.timeout):
        return "timed out"
    lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.strip().endswith("RPC call:")]
    return getattr(e, "strerror", None) or (lines[-1][:300] if lines else type(e).__name__)


def request_device(remote: Remote) -> tuple[str, int, str]:
    """Ask the tracker for a free server of the key (waits while none is free): its address and match key."""
    from tvm.rpc import base

    sock = open_tracker(remote.tracker, timeout=10.0)
    try:
        sock.settimeout(None)  # a request waits until a server of the key is free
        base.sendjson(sock, [base.TrackerCode.REQUEST, remote.key, "", 1])
        code, value = base.recvjson(sock)
    finally:
        sock.close()
    if code != base.TrackerCode.SUCCESS:
        raise RuntimeError(f"the tracker refused the request ({value})")
    url, port, matchkey = value
    return url, int(port), matchkey
