"""Harness for daemon tests: the API objects a controller would leave, and a daemon process to drive.

The daemon runs as a real ``python -m egw daemon`` process in the host network namespace (so it reaches the
loopback API server) with ``--node-netns`` pointing at the test's gateway-node namespace: everything it
builds lives in namespaces the test created or namespaces it creates itself (``gw-<uid>-<ip>``), which the
cleanup removes by the daemon's own ownership markers. The LB probe and metrics listen on loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egw.k8s import client as k8s
from egw.model import names
from tests.fixtures.netns import die_with_parent, kill_and_reap, owner_env, run
from tests.fixtures.wggo import genkey

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition", interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@dataclass
class Gateway:
    """One StaticGatewayConfiguration with everything the controller would have created."""

    namespace: str
    name: str
    uid: str
    ilb_ip: str
    port: int
    private_key: str
    public_key: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def netns(self) -> str:
        return names.netns_name(self.uid, self.ilb_ip)

    @property
    def birth(self) -> str:
        return names.wg_birth_name(self.netns)


@dataclass
class World:
    api: k8s.Client
    namespace: str
    node_name: str
    node_netns: str
    state_dir: Path
    kubeconfig: Path
    log_dir: Path
    probe_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    # ---------------------------------------------------------------------------- API objects

    def create_node(self, ip: str) -> dict[str, Any]:
        node = self.api.create(k8s.NODES, {"metadata": {"name": self.node_name}})
        node["status"] = {"addresses": [{"type": "InternalIP", "address": ip}]}
        return self.api.replace_status(k8s.NODES, node)

    def create_gateway(self, name: str, ilb_ip: str, port: int, secondary_ip: str, primary_ip: str) -> Gateway:
        ns = self.namespace
        priv, pub = genkey()
        secret = {
            "metadata": {"name": name},
            "type": "Opaque",
            "data": {
                "PrivateKey": base64.b64encode(priv.encode()).decode(),
                "PublicKey": base64.b64encode(pub.encode()).decode(),
            },
        }
        self.api.create(k8s.SECRETS, secret, ns)
        pool = {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True}
        sgc = self.api.create(k8s.STATIC_GATEWAY_CONFIGURATIONS, {"metadata": {"name": name}, "spec": pool}, ns)
        sgc["status"] = {
            "egressIpPrefix": "1.2.3.4/31",
            "gatewayServerProfile": {
                "ip": ilb_ip,
                "port": port,
                "publicKey": pub,
                "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": name},
            },
        }
        self.api.replace_status(k8s.STATIC_GATEWAY_CONFIGURATIONS, sgc)
        vmc = self.api.create(k8s.GATEWAY_VM_CONFIGURATIONS, {"metadata": {"name": name}, "spec": pool}, ns)
        vmc["status"] = {
            "egressIpPrefix": "1.2.3.4/31",
            "gatewayVMProfiles": [
                {"nodeName": self.node_name, "primaryIP": primary_ip, "secondaryIP": secondary_ip},
                {"nodeName": "some-other-node", "primaryIP": "10.243.0.5", "secondaryIP": "10.243.0.8"},
            ],
        }
        self.api.replace_status(k8s.GATEWAY_VM_CONFIGURATIONS, vmc)
        return Gateway(ns, name, sgc["metadata"]["uid"], ilb_ip, port, priv, pub)

    def create_pod_endpoint(self, name: str, ip: str, public_key: str, gateway: str = "gw001") -> dict[str, Any]:
        body = {
            "metadata": {"name": name},
            "spec": {"staticGatewayConfiguration": gateway, "podIpAddress": ip, "podPublicKey": public_key},
        }
        return self.api.create(k8s.POD_ENDPOINTS, body, self.namespace)

    def gateway_status(self) -> dict[str, Any] | None:
        return self.api.get_or_none(k8s.GATEWAY_STATUSES, self.node_name, self.namespace)

    def events_for(self, uid: str) -> list[dict[str, Any]]:
        return [e for e in self.api.list(k8s.EVENTS, self.namespace).items if e["involvedObject"].get("uid") == uid]

    # -------------------------------------------------------------------------------- daemon

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.runs += 1
        log = open(self.log_dir / f"daemon-{self.runs}.log", "wb")
        argv = [
            sys.executable, "-m", "egw", "daemon",
            "--node-name", self.node_name,
            "--namespace", self.namespace,
            "--kubeconfig", str(self.kubeconfig),
            "--node-netns", self.node_netns,
            "--gateway-lb-probe-port", str(self.probe_port),
            "--lb-probe-bind", "127.0.0.1",
            "--metrics-port", str(self.metrics_port),
            "--metrics-bind", "127.0.0.1",
            "--state-dir", str(self.state_dir),
            "--lb-probe-drain-seconds", "2",
            "--resync-seconds", "5",
            *extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=owner_env(), cwd=REPO,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        log.close()
        return self.proc

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("daemon-*.log")))

    def probe(self, uid: str) -> int:
        return http_get(f"http://127.0.0.1:{self.probe_port}/gw/{uid}")[0]

    def metrics(self) -> dict[str, float]:
        code, text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert code == 200, "metrics endpoint not answering"
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def kernel_writes(self) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith("egw_daemon_kernel_writes_total"))

    def wg_show(self, gw: Gateway) -> str:
        # wireguard-go's control socket keeps the device's birth name (names.wg_birth_name)
        return run(["wg", "show", gw.birth, "dump"])

    # ------------------------------------------------------------------------------- cleanup

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kill_and_reap(self.proc.pid)
        for pid_file in self.state_dir.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text())
                if b"wireguard-go" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    kill_and_reap(pid)
        for marker in self.state_dir.glob("*.netns"):
            name = marker.name[: -len(".netns")]
            if (Path("/run/netns") / name).exists():
                run(["ip", "netns", "delete", name], check=False)


@contextlib.contextmanager
def running_world(
    control_plane: Any, namespace: str, node_netns: str, primary_ip: str, tmp_path: Path
) -> Iterator[World]:
    """A World for one gateway node (its Node object created with ``primary_ip``), torn down on exit."""
    api = k8s.Client.from_kubeconfig(control_plane.kubeconfig)
    (tmp_path / "logs").mkdir()
    w = World(
        api=api,
        namespace=namespace,
        node_name=new_node_name(),
        node_netns=node_netns,
        state_dir=tmp_path / "state",
        kubeconfig=Path(control_plane.kubeconfig),
        log_dir=tmp_path / "logs",
    )
    w.create_node(primary_ip)
    try:
        yield w
    finally:
        w.cleanup()
        api.delete(k8s.NODES, w.node_name)
        api.close()


def new_node_name() -> str:
    return f"gw-node-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def read_json(text: str) -> Any:
    return json.loads(text)
