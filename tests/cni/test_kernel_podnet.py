"""The pod netns adapter on in-kernel WireGuard (kernel tier, inside the VM).

With the module present, wg0 is created by RTM_NEWLINK from the node netns directly inside the pod netns
(no wireguard-go, no link move) and configured by one genetlink sync; the UDP socket must be the node's.
Everything else (routes, rule, mangle, teardown) is the same code as on the host tier.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import subprocess
from collections.abc import Iterator

import pytest
from pyroute2 import netns

from egw.cni import plugin, podnet
from egw.plan import pod

pytestmark = pytest.mark.kernel

GW_PUB = base64.b64encode(bytes(range(1, 33))).decode()


def _ns(name: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def pair(modprobe) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    modprobe("wireguard", "nf_tables", "nft_compat", "xt_mark", "xt_connmark", "nf_conntrack")
    node, pod_ns = f"egwk-c-{os.getpid()}-node", f"egwk-c-{os.getpid()}-pod"
    netns.create(node)
    netns.create(pod_ns)
    subprocess.run(
        ["ip", "link", "add", "eth0", "netns", pod_ns, "type", "veth", "peer", "h0", "netns", node], check=True
    )
    _ns(node, "ip", "addr", "add", "10.244.0.1/32", "dev", "h0")
    _ns(node, "ip", "link", "set", "h0", "up")
    _ns(pod_ns, "ip", "addr", "add", "10.244.0.20/24", "dev", "eth0")
    _ns(pod_ns, "ip", "link", "set", "eth0", "up")
    _ns(pod_ns, "ip", "route", "add", "default", "via", "10.244.0.1", "dev", "eth0")
    podnet.set_node_netns(f"/run/netns/{node}")
    podnet._kernel = None
    try:
        yield node, pod_ns
    finally:
        podnet.set_node_netns(None)
        podnet._kernel = None
        for n in (pod_ns, node):
            netns.remove(n)


def _udp_ports(ns: str) -> set[int]:
    out = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in _ns(ns, "cat", table).splitlines()[1:]:
            out.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return out


def test_kernel_wg0_born_in_pod_with_socket_in_node(pair: tuple[str, str]) -> None:
    node, pod_ns = pair
    path = f"/run/netns/{pod_ns}"
    assert podnet.kernel_wireguard()
    gw = pod.Gateway(ipaddress.ip_address("10.243.0.6"), 6000, GW_PUB)
    for attempt in range(2):  # the second pass is a retried ADD in the same netns
        seen = podnet.observe(path, "eth0")
        plan = pod.plan_pod(ipaddress.IPv4Interface("10.244.0.20/24"), seen.ns, gw, ())
        priv, pub = plugin.new_private_key()
        podnet.setup(path, "c0ffee", plan, priv, seen.has_wg)
        dump = [line.split("\t") for line in _ns(pod_ns, "wg", "show", "wg0", "dump").splitlines()]
        assert dump[0][1] == pub, attempt
        assert [(p[0], p[2], p[3]) for p in dump[1:]] == [(GW_PUB, "10.243.0.6:6000", "0.0.0.0/0,::/0")]
        port = int(dump[0][2])
        assert port in _udp_ports(node) and port not in _udp_ports(pod_ns)
        routes = sorted(line.strip() for line in _ns(pod_ns, "ip", "-4", "route").splitlines())
        assert routes == ["10.244.0.1 dev eth0 scope link", "default via inet6 fe80::1 dev wg0"], attempt
        assert "32765:\tfrom all fwmark 0x2222 lookup 8738" in _ns(pod_ns, "ip", "rule")
        mangle = [ln for ln in _ns(pod_ns, "iptables-save", "-t", "mangle").splitlines() if ln.startswith("-A")]
        assert mangle == list(pod.mangle_rules("eth0"))
        assert "egwp" not in _ns(node, "ip", "-o", "link")  # no temporary device, no move
    state = podnet.read_wg_kernel(path)
    assert state is not None and state.peers[GW_PUB]["endpoint"] == "10.243.0.6:6000"
    assert podnet.teardown(path, "c0ffee", "eth0") == []
    assert "wg0" not in _ns(pod_ns, "ip", "-o", "link")
    assert "fwmark" not in _ns(pod_ns, "ip", "rule")
    assert "-A " not in _ns(pod_ns, "iptables-save", "-t", "mangle")
