"""The 5 000-peer scenario shared by tests/daemon/test_scale.py (correctness, in make test) and
bench/daemon_scale.py (numbers): N PodEndpoints on one gateway, daemon cold start, converge, restart.

Measured from the outside: peers are counted in wireguard-go (UAPI) and routes with ``ip route``, the
GatewayStatus objects are read from the API server, kernel writes from the daemon's metrics.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from egw.k8s import client as k8s
from egw.plan import status as plan_status
from tests.daemon.harness import Gateway, World, wait_for
from tests.fixtures.netns import run

ILB, PORT, SECONDARY, PRIMARY = "10.243.0.6", 6000, "10.243.0.7", "10.243.0.4"


@dataclass
class ScaleResult:
    peers: int
    create_seconds: float
    converge_kernel_seconds: float
    converge_status_seconds: float
    status_objects: int
    status_max_bytes: int
    status_total_bytes: int
    projected_50k_objects: int
    projected_50k_max_bytes: int
    projected_50k_total_bytes: int
    restart_kernel_writes: float
    restart_ready_seconds: float
    resync_kernel_writes: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def pod_ip(i: int) -> str:
    return f"10.{244 + i // 65536}.{(i // 256) % 256}.{i % 256}/32"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def create_endpoints(w: World, n: int, threads: int = 8) -> list[str]:
    keys = [_key() for _ in range(n)]

    def one(i: int) -> None:
        w.create_pod_endpoint(f"pod-{i:05d}", pod_ip(i), keys[i])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return keys


def kernel_counts(w: World, gw: Gateway) -> tuple[int, int]:
    peers = run(["wg", "show", gw.birth, "peers"], check=False).count("\n")
    routes = run(["ip", "-n", gw.netns, "-4", "route", "show", "dev", "wg0"], check=False).count("\n")
    return peers, routes


def status_objects(w: World) -> list[dict[str, Any]]:
    sel = f"{plan_status.NODE_LABEL}={w.node_name}"
    return w.api.list(k8s.GATEWAY_STATUSES, w.namespace, label_selector=sel).items


def ready_peers(w: World) -> int:
    head = w.gateway_status()
    return int(((head or {}).get("status") or {}).get("readyPeers") or 0)


def listed_peers(w: World) -> int:
    return sum(len(o["spec"].get("readyPeerConfigurations") or []) for o in status_objects(w))


def run_scale(w: World, n: int) -> ScaleResult:
    gw = w.create_gateway("gw001", ILB, PORT, SECONDARY, PRIMARY)
    t = time.monotonic()
    create_endpoints(w, n)
    create_s = time.monotonic() - t

    t0 = time.monotonic()
    w.start("--resync-seconds", "20", "--no-verify-pod-ips")
    wait_for(lambda: kernel_counts(w, gw) == (n, n), timeout=600, interval=0.25, what=f"{n} peers and routes")
    kernel_s = time.monotonic() - t0
    wait_for(lambda: ready_peers(w) == n, timeout=300, interval=0.25, what=f"GatewayStatus with {n} peers")
    wait_for(lambda: listed_peers(w) == n, timeout=60, interval=0.25, what="every shard listed")
    status_s = time.monotonic() - t0

    objs = status_objects(w)
    sizes = [len(json.dumps(o, separators=(",", ":"))) for o in objs]
    listed = sum(len(o["spec"].get("readyPeerConfigurations") or []) for o in objs)
    assert listed == n, f"GatewayStatus lists {listed} peers, expected {n}"

    # "is this pod's peer ready on this node?" stays one lookup with sharded status
    for i in (0, n - 1):
        out = subprocess.run(
            [sys.executable, "-m", "egw", "gateway-status", w.node_name, f"{w.namespace}/pod-{i:05d}",
             "--namespace", w.namespace, "--kubeconfig", str(w.kubeconfig)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(out)["podEndpoint"] == f"{w.namespace}/pod-{i:05d}"
    missing = subprocess.run(
        [sys.executable, "-m", "egw", "gateway-status", w.node_name, f"{w.namespace}/nope",
         "--namespace", w.namespace, "--kubeconfig", str(w.kubeconfig)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "no ready peer" in missing.stdout

    # projection: the same planner with 50 000 entries of the same shape (names as long as ours)
    ns = w.namespace
    proj = plan_status.plan_status(
        w.node_name,
        "00000000-0000-4000-8000-000000000000",
        ns,
        [plan_status.ReadyGateway(gw.key, gw.netns)],
        [plan_status.ReadyPeer(f"{ns}/pod-{i:05d}", gw.netns, _key()) for i in range(50_000)],
    )

    # resync over a converged node: nothing written
    writes = w.kernel_writes()
    wait_for(
        lambda: w.metrics().get('egw_daemon_reconcile_duration_seconds_count{kind="gc"}', 0) >= 2,
        timeout=120,
        what="a periodic resync",
    )
    resync_writes = w.kernel_writes() - writes

    # restart (SIGKILL) over a converged node: zero kernel writes
    w.kill(signal.SIGKILL)
    t1 = time.monotonic()
    w.start("--resync-seconds", "20", "--no-verify-pod-ips")
    wait_for(lambda: w.probe(gw.uid) == 200, timeout=300, what="probe after restart")
    wait_for(
        lambda: w.metrics().get('egw_daemon_reconcile_duration_seconds_count{kind="gc"}', 0) >= 1,
        timeout=120,
        what="gc after restart",
    )
    restart_s = time.monotonic() - t1
    restart_writes = w.kernel_writes()
    assert kernel_counts(w, gw) == (n, n)
    return ScaleResult(
        peers=n,
        create_seconds=round(create_s, 2),
        converge_kernel_seconds=round(kernel_s, 2),
        converge_status_seconds=round(status_s, 2),
        status_objects=len(objs),
        status_max_bytes=max(sizes),
        status_total_bytes=sum(sizes),
        projected_50k_objects=len(proj),
        projected_50k_max_bytes=max(o.size() for o in proj),
        projected_50k_total_bytes=sum(o.size() for o in proj),
        restart_kernel_writes=restart_writes,
        restart_ready_seconds=round(restart_s, 2),
        resync_kernel_writes=resync_writes,
    )
