"""WireGuard devices of the gateway namespaces when the kernel has no WireGuard module: one supervised
wireguard-go process per gateway, driven through the cross-platform userspace API (UAPI).

Why this shape (``reliability.md`` §4.8, ``test-environment.md``):

* A WireGuard device must be *born in the node namespace* and then moved into the gateway namespace, so
  its UDP socket stays in the node namespace (the ILB delivers there). wireguard-go is therefore started
  in the node namespace (``nsenter --net`` when the daemon's node namespace is not its own), under a
  unique birth name (``egw<hash of netns>``), moved, and renamed ``wg0``.
* wireguard-go keeps its control socket under the birth name, ``/var/run/wireguard/<birth>.sock``; the
  name is deterministic, so a restarted daemon finds the socket of every gateway again.
* The process is started in its own session, detached from the daemon: killing the daemon (even with
  SIGKILL) leaves the datapath up, as the kernel module would. Its pid is kept in the state directory; a
  dead process is noticed by :meth:`WireguardGo.alive` and the gateway is rebuilt by the next reconcile.

UAPI keys are hex; private keys never appear in logs or errors (transactions are not logged). This module
is the userspace half of the backend seam; the kernel (genetlink) half lives in ``egw.dataplane``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

UAPI_DIR = Path("/var/run/wireguard")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UapiError(OSError):
    pass


@dataclass
class PeerState:
    public_key: bytes
    allowed_ips: frozenset[IPNetwork] = frozenset()
    endpoint: str | None = None
    last_handshake: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass
class DeviceState:
    private_key: bytes | None = field(default=None, repr=False)
    listen_port: int = 0
    peers: dict[bytes, PeerState] = field(default_factory=dict)


@dataclass(frozen=True)
class PeerChange:
    public_key: bytes
    allowed_ips: tuple[IPNetwork, ...] = ()
    remove: bool = False


def _transact(sock_path: Path, request: str, timeout: float = 30.0) -> list[str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(sock_path))
            s.sendall(request.encode())
            chunks = []
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                chunks.append(data)
                if b"\n\n" in data[-2:] or b"".join(chunks[-2:]).endswith(b"\n\n"):
                    break
        except OSError as exc:
            raise UapiError(exc.errno or 0, f"UAPI {sock_path.name}: {exc.strerror or exc}") from None
    lines = b"".join(chunks).decode().splitlines()
    errno_line = next((ln for ln in lines if ln.startswith("errno=")), "errno=0")
    code = int(errno_line.split("=", 1)[1])
    if code:
        raise UapiError(code, f"UAPI {sock_path.name}: errno={code}")
    return lines


def uapi_get(sock_path: Path) -> DeviceState:
    dev = DeviceState()
    peer: PeerState | None = None
    for line in _transact(sock_path, "get=1\n\n"):
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        if k == "private_key":
            dev.private_key = bytes.fromhex(v)
        elif k == "listen_port":
            dev.listen_port = int(v)
        elif k == "public_key":
            peer = PeerState(bytes.fromhex(v))
            dev.peers[peer.public_key] = peer
        elif peer is not None and k == "allowed_ip":
            peer.allowed_ips = peer.allowed_ips | {ipaddress.ip_network(v, strict=False)}
        elif peer is not None and k == "endpoint":
            peer.endpoint = v
        elif peer is not None and k == "last_handshake_time_sec":
            peer.last_handshake = int(v)
        elif peer is not None and k == "rx_bytes":
            peer.rx_bytes = int(v)
        elif peer is not None and k == "tx_bytes":
            peer.tx_bytes = int(v)
    return dev


def uapi_set(
    sock_path: Path,
    *,
    private_key: bytes | None = None,
    listen_port: int | None = None,
    peers: Iterable[PeerChange] = (),
) -> int:
    """One ``set=1`` transaction; returns the number of peer entries sent."""
    lines = ["set=1"]
    if private_key is not None:
        lines.append(f"private_key={private_key.hex()}")
    if listen_port is not None:
        lines.append(f"listen_port={int(listen_port)}")
    n = 0
    for p in peers:
        n += 1
        lines.append(f"public_key={p.public_key.hex()}")
        if p.remove:
            lines.append("remove=true")
            continue
        lines.append("replace_allowed_ips=true")
        lines.extend(f"allowed_ip={ip}" for ip in p.allowed_ips)
    _transact(sock_path, "\n".join(lines) + "\n\n")
    return n


class WireguardGo:
    """Start, find and stop the wireguard-go process of one gateway device."""

    def __init__(self, state_dir: Path, node_netns: str | None, binary: str = "wireguard-go") -> None:
        self.state_dir = state_dir
        self.node_netns = node_netns
        self.binary = shutil.which(binary) or binary
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @staticmethod
    def available(binary: str = "wireguard-go") -> bool:
        return shutil.which(binary) is not None

    def socket_path(self, birth: str) -> Path:
        return UAPI_DIR / f"{birth}.sock"

    def _pid_file(self, birth: str) -> Path:
        return self.state_dir / f"{birth}.pid"

    def pid(self, birth: str) -> int | None:
        try:
            pid = int(self._pid_file(birth).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_wireguard_go(pid, birth) else None

    def alive(self, birth: str) -> bool:
        child = self._children.get(birth)
        if child is not None and child.poll() is not None:
            self._children.pop(birth, None)  # reap
        return self.pid(birth) is not None and self.socket_path(birth).exists()

    def start(self, birth: str, timeout: float = 10.0) -> int:
        """Start wireguard-go in the node namespace; returns once its control socket answers."""
        self.stop(birth)
        argv: list[str] = [self.binary, "-f", birth]
        if self.node_netns:
            argv = ["nsenter", f"--net=/run/netns/{self.node_netns}", "--", *argv]
        env = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1", WG_PROCESS_FOREGROUND="1")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.state_dir / f"{birth}.log", "ab")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, start_new_session=True
            )
        finally:
            logf.close()
        self._children[birth] = proc
        self._pid_file(birth).write_text(f"{proc.pid}\n")
        sock = self.socket_path(birth)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise UapiError(0, f"wireguard-go for {birth} exited with {proc.returncode}")
            if sock.exists():
                with contextlib.suppress(UapiError):
                    uapi_get(sock)
                    return proc.pid
            time.sleep(0.02)
        raise UapiError(0, f"wireguard-go for {birth}: control socket did not appear")

    def stop(self, birth: str) -> None:
        pid = self.pid(birth)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _is_wireguard_go(pid, birth):
                    break
                child = self._children.get(birth)
                if child is not None:
                    child.poll()
                time.sleep(0.02)
        child = self._children.pop(birth, None)
        if child is not None:
            with contextlib.suppress(Exception):
                child.wait(1)
        with contextlib.suppress(OSError):
            self._pid_file(birth).unlink()
        with contextlib.suppress(OSError):
            self.socket_path(birth).unlink()


def _is_wireguard_go(pid: int, birth: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    args: Sequence[bytes] = raw.split(b"\0")
    return any(a.endswith(b"wireguard-go") for a in args) and birth.encode() in args
