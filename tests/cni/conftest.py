"""Fixtures for the pod-side tests: the compiled front end, an in-process cni-manager socket, a CNI caller."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from egw.cni import manager, plugin
from egw.cni.server import ShimServer
from tests.cni.fakes import FakeCluster

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "build" / "bin" / "kube-egress-gateway-cni"


@pytest.fixture(scope="session")
def shim_bin() -> Path:
    if not SHIM.is_file():
        subprocess.run(["make", "-C", str(REPO), "cni-shim"], check=True, capture_output=True)
    return SHIM


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Short and private: unix socket paths are limited to 107 bytes, pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="egwcni-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@dataclass
class Result:
    rc: int
    out: dict[str, Any] | None
    raw: bytes
    err: str


@dataclass
class Caller:
    """Runs the front end like a container runtime would: env + stdin in, stdout JSON out."""

    shim: Path
    socket: Path

    def __call__(
        self,
        command: str,
        conf: Mapping[str, Any] | bytes,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        user: int | None = None,
        **cni: str,
    ) -> Result:
        e = {"PATH": os.environ.get("PATH", ""), "EGW_CNI_SOCKET": str(self.socket), "CNI_COMMAND": command}
        e.update({f"CNI_{k.upper()}": v for k, v in cni.items()})
        e.update(env or {})
        data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
        argv = [str(self.shim)]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
        proc = subprocess.run(argv, input=data, env=e, capture_output=True, timeout=timeout, check=False)
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return Result(proc.returncode, out, proc.stdout, proc.stderr.decode(errors="replace"))


@dataclass
class FakeManager:
    cluster: FakeCluster
    plugin: plugin.Plugin
    server: ShimServer
    call: Caller


@pytest.fixture
def fake_manager(shim_bin: Path, sock_dir: Path) -> Iterator[FakeManager]:
    cluster = FakeCluster()
    plug = plugin.Plugin(cluster, test_faults=True)
    server = ShimServer(sock_dir / "run" / "cni.sock", manager.Handler(plug)).start()
    try:
        yield FakeManager(cluster, plug, server, Caller(shim_bin, server.path))
    finally:
        server.stop()
