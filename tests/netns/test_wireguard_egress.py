"""Proving test of the host tier: the seed's egress path built by hand on wireguard-go.

A pod's wg0 (UDP socket in its node's namespace) tunnels to a gateway netns' wg0 (UDP socket in the
gateway node's namespace, reached at the ILB frontend 10.243.0.6:6000); the gateway netns masquerades out
of host0, so the internet sees 10.243.0.7, never the pod IP. This is what the daemon and CNI build; here
the fixtures build it directly to show the machinery is real (handshake, encrypted UDP between node IPs,
MASQUERADE seen in a capture).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.netns import NetnsFactory, veth
from tests.fixtures.packets import Probe, send_and_capture
from tests.fixtures.topology import Topology, TopologySpec
from tests.fixtures.wggo import Peer, WgFactory, genkey

pytestmark = pytest.mark.netns

GW_PORT = 6000
MASQ_IP = "10.243.0.7"


def test_pod_egress_through_wireguard_go_is_masqueraded(
    topology_factory: Callable[[TopologySpec], Topology], netns_factory: NetnsFactory, wg_factory: WgFactory
) -> None:
    topo = topology_factory(TopologySpec.seed())
    node, gwnode, pod, inet = topo.nodes["node"], topo.nodes["gwnode"], topo.pods["pod-a"], topo.internet
    assert inet is not None
    pod_ip = str(pod.ip.ip)

    # Gateway namespace on the gateway node, as in the seed: host0 10.243.0.7/32 ⇄ gw-17f83d68.
    gw = netns_factory("gw")
    gw.sysctl("net.ipv4.ip_forward", 1)
    veth(gw, "host0", gwnode.ns, "gw-17f83d68")
    gw.ip_batch(
        [
            f"addr add {MASQ_IP}/32 dev host0",
            f"route add {gwnode.ip.ip} dev host0 scope link",
            f"route add default via {gwnode.ip.ip} dev host0",
        ]
    )
    gwnode.ns.ip("route", "add", f"{MASQ_IP}/32", "dev", "gw-17f83d68")
    gw.iptables_restore("*nat\n-A POSTROUTING -o host0 -j MASQUERADE\nCOMMIT\n")

    gw_priv, gw_pub = genkey()
    pod_priv, pod_pub = genkey()
    gw_dev = wg_factory(gwnode.ns)  # UDP socket in the gateway node
    gw_dev.configure(private_key=gw_priv, listen_port=GW_PORT, peers=[Peer(pod_pub, allowed_ips=[f"{pod_ip}/32"])])
    gw_dev.move(gw, "wg0")
    gw.ip_batch(["addr add fe80::1/64 dev wg0", f"route add {pod_ip}/32 dev wg0"])

    pod_dev = wg_factory(node.ns)  # UDP socket in the pod's node
    pod_dev.configure(
        private_key=pod_priv,
        peers=[Peer(gw_pub, endpoint=f"10.243.0.6:{GW_PORT}", allowed_ips=["0.0.0.0/0", "::/0"])],
    )
    pod_dev.move(pod.ns, "wg0")
    link_local = next(a for a in pod.ns.addresses("eth0") if a.startswith("fe80::"))
    pod.ns.ip_batch(
        [
            f"addr add {link_local} dev wg0",
            "route del default",
            f"route add {pod.gateway} dev eth0 scope link",
        ]
    )
    # Without -4, iproute2 would add an IPv6 default route (test-environment.md).
    pod.ns.ip("-4", "route", "add", "default", "via", "inet6", "fe80::1", "dev", "wg0")
    assert pod.ns.routes("default")[0]["dev"] == "wg0"

    # An ICMP echo from the pod reaches the internet with the masquerading address as its source.
    cap = send_and_capture(
        pod.ns, [Probe("icmp", "203.0.113.10"), Probe("tcp", "203.0.113.10", dport=443)], inet.ns, inet.bridge
    )
    echo_reply, tcp_reply = cap.replies
    assert echo_reply is not None and echo_reply["ICMP"].type == 0 and echo_reply.dst == pod_ip
    assert tcp_reply is not None and tcp_reply["TCP"].dport == cap.sent[1]["TCP"].sport
    assert cap.sources("203.0.113.10") == {MASQ_IP}
    assert pod_ip not in {p.src for p in cap.ip_packets()}

    # Both sides completed a handshake and moved bytes; the gateway learned the pod node's IP as endpoint.
    gw_peer = gw_dev.wait_handshake(pod_pub)
    pod_peer = pod_dev.wait_handshake(gw_pub)
    assert gw_peer.endpoint is not None and gw_peer.endpoint.startswith(f"{node.ip.ip}:")
    assert min(gw_peer.rx_bytes, gw_peer.tx_bytes, pod_peer.rx_bytes, pod_peer.tx_bytes) > 0
    assert "MASQUERADE" in gw.iptables_save("nat")

    # On the VNet switch only encrypted UDP between the node IPs is visible, never the pod's packets. The
    # echo waits for its reply, which crossed the switch inside the tunnel, so both directions are captured.
    wire = send_and_capture(pod.ns, [Probe("icmp", "203.0.113.10")], topo.vnet, "br0", bpf=f"udp port {GW_PORT}")
    assert wire.replies[0] is not None and wire.replies[0]["ICMP"].type == 0
    tunnel = wire.ip_packets(proto=17)
    directions = {(p.src, p.dst) for p in tunnel}
    assert directions == {(str(node.ip.ip), "10.243.0.6"), ("10.243.0.6", str(node.ip.ip))}
    assert not any(p.haslayer("ICMP") for p in tunnel)
    assert wire.ip_packets(dst="203.0.113.10") == [] and pod_ip not in {p.src for p in wire.ip_packets()}
