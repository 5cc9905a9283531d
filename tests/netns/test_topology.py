"""The seed-picture topology builder and the scapy send/capture helper, against the real kernel."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.packets import Capture, Probe, send_and_capture
from tests.fixtures.topology import NodeSpec, PodSpec, Topology, TopologySpec

pytestmark = pytest.mark.netns

TopologyFactory = Callable[[TopologySpec], Topology]


def test_seed_topology_has_the_seed_addresses(topology_factory: TopologyFactory) -> None:
    topo = topology_factory(TopologySpec.seed())
    node, gwnode, pod = topo.nodes["node"], topo.nodes["gwnode"], topo.pods["pod-a"]
    assert "10.243.4.4/16" in node.ns.addresses("eth0")
    assert {"10.243.0.4/16", "10.243.0.6/32"} <= set(gwnode.ns.addresses("eth0"))
    assert "10.244.0.20/24" in pod.ns.addresses("eth0")
    assert any(a.startswith("fe80::") for a in pod.ns.addresses("eth0"))  # usable link-local for the CNI
    assert [r["gateway"] for r in pod.ns.routes("default")] == ["10.244.0.1"]
    assert topo.internet is not None and "203.0.113.10/32" in topo.internet.ns.addresses("lo")
    # Every object lives in namespaces of this test run.
    assert all(ns.name.startswith("egwt-") for ns in topo.namespaces())
    assert len({ns.name for ns in topo.namespaces()}) == 5


def test_pod_reaches_gateway_node_but_not_the_internet(topology_factory: TopologyFactory) -> None:
    topo = topology_factory(TopologySpec.seed())
    pod, inet = topo.pods["pod-a"], topo.internet
    assert inet is not None
    # The ILB frontend on the gateway node answers across the VNet switch.
    pod.node.ns.exec("ping", "-c1", "-W5", "10.243.0.6")
    cap = send_and_capture(pod.ns, [Probe("icmp", "203.0.113.10")], inet.ns, inet.bridge)
    reply = cap.replies[0]
    assert reply is not None and reply.src == "10.244.0.1"  # the node: no route to the internet
    assert (reply["ICMP"].type, reply["ICMP"].code) == (3, 0)  # net unreachable
    assert cap.ip_packets(dst="203.0.113.10") == []


def test_gateway_node_reaches_the_internet_with_tcp_udp_icmp(topology_factory: TopologyFactory) -> None:
    topo = topology_factory(TopologySpec.seed())
    gw, inet = topo.nodes["gwnode"], topo.internet
    assert inet is not None and gw.wan_ip is not None
    probes = [Probe("icmp", "203.0.113.10"), Probe("tcp", "203.0.113.10", dport=80, sport=40001)]
    cap: Capture = send_and_capture(gw.ns, probes, inet.ns, inet.bridge)
    assert cap.replies[0] is not None and cap.replies[0]["ICMP"].type == 0  # echo reply
    assert cap.replies[1] is not None and "R" in str(cap.replies[1]["TCP"].flags)  # closed port: RST
    assert cap.sources("203.0.113.10") == {str(gw.wan_ip.ip)}
    udp = send_and_capture(
        gw.ns,
        [Probe("udp", "203.0.113.10", dport=5353, sport=40002, payload=b"hello", wait_reply=False)],
        inet.ns,
        inet.bridge,
        bpf="udp and dst port 5353",
        count=1,
    )
    (seen,) = udp.ip_packets(dst="203.0.113.10", proto=17)
    assert (seen["UDP"].sport, bytes(seen["UDP"].payload)) == (40002, b"hello")


def test_builder_is_parameterised(topology_factory: TopologyFactory) -> None:
    spec = TopologySpec(
        nodes=(
            NodeSpec("n1", "10.243.4.4", pod_cidr="10.244.0.0/24", pods=(PodSpec("p1", "10.244.0.20/24"),)),
            NodeSpec("n2", "10.243.4.5", pod_cidr="10.244.2.0/24", pods=(PodSpec("p2", "10.244.2.30/24"),)),
            NodeSpec("g1", "10.243.0.4", extra_ips=("10.243.0.6/32",), uplink=True),
            NodeSpec("g2", "10.243.0.5", extra_ips=("10.243.0.6/32",), uplink=True),
        ),
        internet_hosts=("203.0.113.10", "203.0.113.11"),
    )
    topo = topology_factory(spec)
    extra = topo.add_pod("n1", PodSpec("p3", "10.244.0.21/24"))
    assert extra.host_if == "veth1" and "10.244.0.21/24" in extra.ns.addresses("eth0")
    extra.ns.exec("ping", "-c1", "-W5", "10.244.0.20")  # same bridge as p1
    topo.nodes["g2"].ns.exec("ping", "-c1", "-W5", "203.0.113.11")
    topo.nodes["n2"].ns.exec("ping", "-c1", "-W5", "10.243.0.4")
    with pytest.raises(ValueError, match=r"not in node 'n2'"):
        topo.add_pod("n2", PodSpec("bad", "10.244.0.99/24"))
    with pytest.raises(ValueError, match="has no pod_cidr"):
        topo.add_pod("g1", PodSpec("bad2", "10.244.0.98/24"))
