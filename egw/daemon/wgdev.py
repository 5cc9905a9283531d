"""WireGuard devices of the gateway namespaces when the kernel has no WireGuard module: one supervised
wireguard-go process per gateway (configured through its UAPI socket by ``egw.dataplane.wg``).

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

This module only runs processes; keys never pass through it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

UAPI_DIR = Path("/var/run/wireguard")


class UapiError(OSError):
    pass


def _answers(sock_path: Path) -> bool:
    """The control socket accepts connections (wireguard-go is serving its UAPI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(sock_path))
        except OSError:
            return False
    return True


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
            if sock.exists() and _answers(sock):
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
