"""Pod side end to end: the real chain (ptp → kube-egress-gateway-cni) on a pod node, the gateway daemon on a
gateway node, the real kube-apiserver, wireguard-go, scapy traffic (issue 6 "End to end").

Picture (tests/fixtures/topology.py): pod node 10.243.4.4 (pods from Debian ptp, 10.244.0.0/24), gateway node
10.243.0.4 with the ILB frontend 10.243.0.6:6000 and secondary IP 10.243.0.7, an "internet" namespace. The
test plays the controller (SGC status, Secret, VM profiles: tests/daemon/harness.py) and the kubelet (runs
the chain, then reports status.podIP); cni-manager and the daemon do everything else.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from egw.k8s import client as k8s
from tests.cni.harness import Chain, start_chain, wg_dump
from tests.cni.runtime import Sandbox
from tests.daemon.harness import Gateway, World, running_world, wait_for
from tests.fixtures.netns import Netns
from tests.fixtures.packets import Probe, send_and_capture
from tests.fixtures.topology import NodeSpec, Topology, TopologySpec

pytestmark = [pytest.mark.netns, pytest.mark.apiserver, pytest.mark.e2e]

ILB, PORT, SECONDARY, PRIMARY = "10.243.0.6", 6000, "10.243.0.7", "10.243.0.4"
POD_NODE_IP = "10.243.4.4"
INTERNET_HOST = "203.0.113.10"


@pytest.fixture
def e2e(
    control_plane: Any,
    k8s_namespace: str,
    topology_factory: Callable[[TopologySpec], Topology],
    netns_factory: Any,
    shim_bin: Path,
    sock_dir: Path,
    tmp_path: Path,
) -> Iterator[tuple[World, Gateway, Chain, Topology]]:
    topo = topology_factory(
        TopologySpec(nodes=(NodeSpec("node", POD_NODE_IP), NodeSpec("gwnode", PRIMARY, uplink=True)))
    )
    with running_world(control_plane, k8s_namespace, topo.nodes["gwnode"].ns.name, PRIMARY, tmp_path) as w:
        gw = w.create_gateway("gw001", ILB, PORT, SECONDARY, PRIMARY)
        w.start()
        chain = start_chain(
            control_plane,
            k8s_namespace,
            topo.nodes["node"].ns,
            netns_factory,
            shim_bin,
            sock_dir,
            tmp_path,
            node_name=f"pod-{w.node_name}",
        )
        yield w, gw, chain, topo


def kubelet_reports(chain: Chain, sb: Sandbox, result: dict[str, Any]) -> str:
    ip = result["ips"][0]["address"].split("/")[0]
    status = {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}
    chain.api.patch_status(k8s.PODS, sb.name, status, sb.namespace)
    return ip


def gateway_peers(w: World, gw: Gateway) -> list[list[str]]:
    return [line.split("\t") for line in w.wg_show(gw).splitlines()[1:]]


def test_pod_egresses_through_the_gateway(e2e: tuple[World, Gateway, Chain, Topology]) -> None:
    w, gw, chain, topo = e2e
    inet = topo.internet
    assert inet is not None
    wait_for(lambda: w.probe(gw.uid) == 200, what=f"gateway up; daemon log:\n{w.log()[-2000:]}")

    a, b = chain.pod("pod-a", sgc="gw001"), chain.pod("pod-b", sgc=None)
    t0 = time.monotonic()
    res_a = chain.runtime.add(a)
    ip_a = kubelet_reports(chain, a, res_a)
    pub = wg_dump(a)[0][1]
    wait_for(lambda: [p[0] for p in gateway_peers(w, gw)] == [pub], what="the pod's peer on the gateway")
    peer_ready = time.monotonic() - t0
    ip_b = kubelet_reports(chain, b, chain.runtime.add(b))
    print(f"ADD -> gateway peer present: {peer_ready * 1000:.0f} ms (includes the test's status report)")
    assert gateway_peers(w, gw)[0][3] == f"{ip_a}/32"

    pod_ns, node = Netns(os.path.basename(a.netns)), topo.nodes["node"].ns
    # Internet-bound traffic leaves the gateway with its secondary IP; replies come back through the tunnel.
    cap = send_and_capture(
        pod_ns, [Probe("icmp", INTERNET_HOST), Probe("tcp", INTERNET_HOST, dport=443)], inet.ns, inet.bridge
    )
    assert all(r is not None for r in cap.replies)
    assert cap.sources(INTERNET_HOST) == {SECONDARY}
    peer = gateway_peers(w, gw)[0]
    assert peer[2].startswith(f"{POD_NODE_IP}:") and int(peer[4]) > 0  # handshake from the pod node's IP

    def tunnel_bytes() -> int:
        return int(wg_dump(a)[1][5]) + int(wg_dump(a)[1][6])

    # Traffic to another pod (10.244.0.0/16 is an exception CIDR) does not enter the tunnel.
    before = tunnel_bytes()
    ping = subprocess.run(["ip", "netns", "exec", pod_ns.name, "ping", "-c", "2", "-W", "2", ip_b], capture_output=True)
    assert ping.returncode == 0, ping.stdout
    assert tunnel_bytes() == before

    # A connection opened from the node to the pod (node IP is not an exception) is answered via eth0: the
    # fwmark/connmark path, not the tunnel.
    ping = subprocess.run(
        ["ip", "netns", "exec", node.name, "ping", "-c", "2", "-W", "2", "-I", POD_NODE_IP, ip_a], capture_output=True
    )
    assert ping.returncode == 0, ping.stdout
    assert tunnel_bytes() == before

    # DEL removes the peer from the gateway (PodEndpoint deleted → daemon removes the peer).
    assert chain.runtime.delete(a) == []
    wait_for(lambda: gateway_peers(w, gw) == [], what="the peer to leave the gateway")
    assert chain.runtime.delete(b) == []
