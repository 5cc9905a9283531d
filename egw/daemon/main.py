"""``egw daemon``: the gateway-node daemon (a DaemonSet with hostNetwork on the gateway node pool).

Wiring only: flags/env → Settings, API client, kernel adapter, reconciler, LB probe, metrics, signals.
SIGTERM/SIGINT: the LB probe answers 503 for ``--lb-probe-drain-seconds`` (the ILB moves new flows
away), then the daemon stops its threads and exits 0. The datapath is never torn down on exit: a
restarted daemon adopts it and, when nothing drifted, writes nothing to the kernel.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from egw.daemon import logs
from egw.daemon.kernel import GatewayKernel
from egw.daemon.metrics import Metrics
from egw.daemon.probe import Probe
from egw.daemon.reconciler import Reconciler, Settings
from egw.daemon.wgdev import WireguardGo
from egw.k8s import client as k8s
from egw.model import names
from egw.plan import status as plan_status

log = logging.getLogger("egw.daemon")


def add_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--node-name", default=env("MY_NODE_NAME"), help="this node's name (default: $MY_NODE_NAME)")
    p.add_argument(
        "--namespace",
        default=env("MY_POD_NAMESPACE", "kube-egress-gateway-system"),
        help="namespace of the GatewayStatus objects (default: $MY_POD_NAMESPACE or %(default)s)",
    )
    p.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig (default: in-cluster or $KUBECONFIG)")
    p.add_argument(
        "--node-interface", default="eth0", help="node interface that gets the ILB frontend IP /32 (default: eth0)"
    )
    p.add_argument(
        "--node-netns",
        default=None,
        help="named network namespace acting as the node (tests); default: the daemon's own namespace",
    )
    p.add_argument("--gateway-lb-probe-port", type=int, default=8082, help="LB health probe port (default: 8082)")
    p.add_argument("--lb-probe-bind", default="0.0.0.0", help="LB health probe address (default: %(default)s)")  # noqa: S104
    p.add_argument("--lb-probe-drain-seconds", type=float, default=10.0, help="503 period before exit on SIGTERM")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port, 0 = off (default: 8080)")
    p.add_argument("--metrics-bind", default="0.0.0.0", help="metrics address (default: %(default)s)")  # noqa: S104
    p.add_argument("--resync-seconds", type=float, default=60.0, help="full resync period (default: 60)")
    p.add_argument("--batch-window", type=float, default=0.2, help="event coalescing window in seconds (default: 0.2)")
    p.add_argument("--state-dir", type=Path, default=Path("/run/egw-daemon"), help="ownership markers, pid files")
    p.add_argument(
        "--wireguard-backend",
        choices=("auto", "kernel", "wireguard-go"),
        default="auto",
        help="kernel module when present (auto), or one supervised wireguard-go per gateway",
    )
    p.add_argument("--wireguard-go", default="wireguard-go", help="wireguard-go binary (userspace backend)")
    p.add_argument(
        "--no-verify-pod-ips", action="store_true", help="do not watch Pods to check PodEndpoint IPs against them"
    )
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=("json", "text"), default="json")


def run(args: argparse.Namespace) -> int:
    logs.setup(args.log_level, args.log_format)
    if not args.node_name:
        log.error("--node-name (or $MY_NODE_NAME) is required")
        return 2
    metrics = Metrics()
    kernel = GatewayKernel(
        state_dir=args.state_dir,
        node_netns=args.node_netns,
        wireguard_go=args.wireguard_go,
        backend=args.wireguard_backend,
        on_write=lambda kind, n: metrics.kernel_writes.labels(kind).inc(n),
    )
    if kernel.backend == "wireguard-go" and not WireguardGo.available(args.wireguard_go):
        log.error("no WireGuard backend: no kernel module and %s is not on PATH", args.wireguard_go)
        return 2
    log.info("WireGuard backend: %s", kernel.backend)
    api = k8s.Client.auto(args.kubeconfig, user_agent="egw-daemon")
    settings = Settings(
        node_name=args.node_name,
        namespace=args.namespace,
        node_interface=args.node_interface,
        batch_window=args.batch_window,
        resync_period=args.resync_seconds,
        verify_pod_ips=not args.no_verify_pod_ips,
    )
    rec = Reconciler(settings, api, kernel, metrics)
    probe = Probe(rec.probe_ready)
    port = probe.serve(args.gateway_lb_probe_port, args.lb_probe_bind)
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.metrics_bind)
    stop = threading.Event()

    main_pid = os.getpid()

    def on_signal(signum: int, _frame: object) -> None:
        if os.getpid() != main_pid:  # a helper process forked by pyroute2 inherited this handler
            os._exit(128 + signum)
        log.info("signal %d: draining the LB probe for %.0fs", signum, args.lb_probe_drain_seconds)
        probe.drain()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rec.start()
    log.info("egw daemon started on node %s (probe :%d)", args.node_name, port)
    stop.wait()
    stop_deadline = threading.Event()
    stop_deadline.wait(args.lb_probe_drain_seconds)
    rec.stop()
    probe.stop()
    kernel.close()
    api.close()
    log.info("egw daemon stopped; datapath left in place")
    return 0


def add_lookup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("node", help="gateway node name")
    p.add_argument("pod_endpoint", metavar="NAMESPACE/NAME", help="the PodEndpoint (= the pod) to look for")
    p.add_argument(
        "--namespace",
        default=os.environ.get("MY_POD_NAMESPACE", "kube-egress-gateway-system"),
        help="namespace of the GatewayStatus objects (default: %(default)s)",
    )
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig (default: $KUBECONFIG)")


def run_lookup(args: argparse.Namespace) -> int:
    """Is this pod's peer ready on this node? One or two GETs, whatever the number of peers (shards)."""
    api = k8s.Client.auto(args.kubeconfig, user_agent="egw-cli")
    try:
        objects: dict[str, Any] = {}
        head = api.get_or_none(k8s.GATEWAY_STATUSES, args.node, args.namespace)
        if head is not None:
            objects[args.node] = head
            count = int((head.get("spec") or {}).get("peerShardCount") or 1)
            shard = names.status_shard_name(args.node, plan_status.shard_of(args.pod_endpoint, count))
            if shard not in objects:
                found = api.get_or_none(k8s.GATEWAY_STATUSES, shard, args.namespace)
                if found is not None:
                    objects[shard] = found
        entry = plan_status.lookup(objects, args.node, args.pod_endpoint)
    finally:
        api.close()
    if entry is None:
        print(f"{args.pod_endpoint}: no ready peer on node {args.node}")
        return 1
    print(json.dumps(entry))
    return 0
