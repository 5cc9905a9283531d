"""The kernel tier works: real in-kernel WireGuard, genetlink read-back, NAT and the socket-netns trick.

These run inside the VM (tests/fixtures/kernel.py). They prove the pieces the product relies on
exist in the VM's kernel and behave as the design assumes, using pyroute2 (genetlink) for set and
read-back and wireguard-tools' `wg` as an independent second reader.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute, WireGuard, netns

from tests.kernel.nsutil import nsexec

pytestmark = pytest.mark.kernel

LISTEN_PORT = 51820


def _wg(*argv: str, input: str | None = None) -> str:
    return subprocess.run(["wg", *argv], input=input, capture_output=True, text=True, check=True).stdout.strip()


def _keypair() -> tuple[str, str]:
    private = _wg("genkey")
    return private, _wg("pubkey", input=private)


def _attrs(msg: Any) -> dict[str, Any]:
    return dict(msg["attrs"])


def _add_wireguard(ns: str, ifname: str = "wg0") -> int:
    with IPRoute(netns=ns) as ipr:
        ipr.link("add", ifname=ifname, kind="wireguard")
        (index,) = ipr.link_lookup(ifname=ifname)
        return int(index)


def _udp_ports(ns: str) -> set[int]:
    """Local ports of UDP sockets in ``ns`` (IPv4 and IPv6), from the kernel's own tables."""
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in nsexec(ns, "cat", table).splitlines()[1:]:
            local = line.split()[1]
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_wireguard_link_round_trip_over_genetlink(
    make_netns: Callable[[str], str], modprobe: Callable[..., None]
) -> None:
    modprobe("wireguard")
    assert Path("/sys/module/wireguard").is_dir()  # the real kernel module, not a userspace stand-in
    ns = make_netns("wg")
    index = _add_wireguard(ns)
    private, public = _keypair()
    peer_private, peer_public = _keypair()
    del peer_private
    peer = {
        "public_key": peer_public,
        "endpoint_addr": "192.0.2.10",
        "endpoint_port": 6000,
        "persistent_keepalive": 25,
        "allowed_ips": ["10.244.0.5/32", "fd00::5/128"],
    }
    with WireGuard(netns=ns) as wg:
        wg.set("wg0", private_key=private, listen_port=LISTEN_PORT, fwmark=0x2222, peer=peer)
        (msg,) = wg.info("wg0")

    dev = _attrs(msg)
    assert dev["WGDEVICE_A_IFINDEX"] == index
    assert dev["WGDEVICE_A_IFNAME"] == "wg0"
    assert dev["WGDEVICE_A_PRIVATE_KEY"].decode() == private
    assert dev["WGDEVICE_A_PUBLIC_KEY"].decode() == public  # derived by the kernel
    assert dev["WGDEVICE_A_LISTEN_PORT"] == LISTEN_PORT
    assert dev["WGDEVICE_A_FWMARK"] == 0x2222
    (p,) = dev["WGDEVICE_A_PEERS"]
    pa = _attrs(p)
    assert pa["WGPEER_A_PUBLIC_KEY"].decode() == peer_public
    assert base64.b64decode(pa["WGPEER_A_PRESHARED_KEY"]) == bytes(32)
    assert pa["WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL"] == 25
    assert (pa["WGPEER_A_ENDPOINT"]["addr"], pa["WGPEER_A_ENDPOINT"]["port"]) == ("192.0.2.10", 6000)
    assert sorted(a["addr"] for a in pa["WGPEER_A_ALLOWEDIPS"]) == ["10.244.0.5/32", "fd00::5/128"]

    # wireguard-tools reads the same device independently (its own genetlink code).
    dump = [line.split("\t") for line in nsexec(ns, "wg", "show", "wg0", "dump").splitlines()]
    assert dump[0] == [private, public, str(LISTEN_PORT), "0x2222"]
    assert dump[1][:4] == [peer_public, "(none)", "192.0.2.10:6000", "10.244.0.5/32,fd00::5/128"]
    assert dump[1][7] == "25"

    # Removing the peer by key leaves the device with none.
    with WireGuard(netns=ns) as wg:
        wg.set("wg0", peer={"public_key": peer_public, "remove": True})
    assert nsexec(ns, "wg", "show", "wg0", "peers").strip() == ""


@pytest.mark.parametrize("how", ["moved", "created-in-target"])
def test_udp_socket_stays_in_the_birth_namespace(make_netns: Callable[[str], str], how: str) -> None:
    """The egress-gateway trick: wg0 lives in the pod netns, its UDP socket in the node netns."""
    node, pod = make_netns("node"), make_netns("pod")
    private, public = _keypair()
    with IPRoute(netns=node) as ipr:
        if how == "moved":
            ipr.link("add", ifname="wg0", kind="wireguard")
            ipr.link("set", index=ipr.link_lookup(ifname="wg0")[0], net_ns_fd=pod)
        else:
            # IFLA_NET_NS_FD on creation: the device is born in `pod`, created from `node`.
            ipr.link("add", ifname="wg0", kind="wireguard", net_ns_fd=pod)
        assert ipr.link_lookup(ifname="wg0") == []
    with WireGuard(netns=pod) as wg:
        wg.set("wg0", private_key=private, listen_port=LISTEN_PORT)
        (msg,) = wg.info("wg0")
    assert _attrs(msg)["WGDEVICE_A_PUBLIC_KEY"].decode() == public
    nsexec(pod, "ip", "link", "set", "wg0", "up")  # the socket is opened when the device goes up

    assert LISTEN_PORT in _udp_ports(node)
    assert LISTEN_PORT not in _udp_ports(pod)
    ss = nsexec(node, "ss", "-Huan", f"sport = :{LISTEN_PORT}")
    assert f":{LISTEN_PORT}" in ss
    assert nsexec(pod, "ss", "-Huan", f"sport = :{LISTEN_PORT}").strip() == ""
    assert "wg0" in json.dumps(json.loads(nsexec(pod, "ip", "-j", "link", "show", "wg0")))


def _udp_socket_in(ns: str, bind: tuple[str, int] | None = None) -> socket.socket:
    """A UDP socket that belongs to ``ns`` (sockets keep the netns they were created in)."""
    netns.pushns(ns)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    finally:
        netns.popns()
    s.settimeout(20)
    if bind:
        s.bind(bind)
    return s


@pytest.mark.parametrize("iptables", ["iptables-nft", "iptables-legacy"])
def test_masquerade_in_a_namespace(make_netns: Callable[[str], str], iptables: str) -> None:
    """client -> router (MASQUERADE on its outside veth) -> server: the server sees the router's IP."""
    client, router, server = make_netns("cli"), make_netns("rtr"), make_netns("srv")
    with IPRoute(netns=router) as ipr:
        ipr.link("add", ifname="in0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": client})
        ipr.link("add", ifname="out0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": server})
    for ns, dev, addr in [
        (client, "eth0", "198.51.100.2/24"),
        (router, "in0", "198.51.100.1/24"),
        (router, "out0", "203.0.113.1/24"),
        (server, "eth0", "203.0.113.2/24"),
    ]:
        nsexec(ns, "ip", "addr", "add", addr, "dev", dev)
        nsexec(ns, "ip", "link", "set", dev, "up")
    nsexec(client, "ip", "route", "add", "default", "via", "198.51.100.1")
    nsexec(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nsexec(router, iptables, "-w", "-t", "nat", "-A", "POSTROUTING", "-o", "out0", "-j", "MASQUERADE")

    srv = _udp_socket_in(server, bind=("203.0.113.2", 7000))
    cli = _udp_socket_in(client)
    with srv, cli:
        cli.sendto(b"ping", ("203.0.113.2", 7000))
        data, (source, port) = srv.recvfrom(100)
        assert (data, source) == (b"ping", "203.0.113.1")
        srv.sendto(b"pong", (source, port))  # conntrack maps the reply back to the client
        assert cli.recvfrom(100) == (b"pong", ("203.0.113.2", 7000))
    counters = nsexec(router, iptables, "-w", "-t", "nat", "-L", "POSTROUTING", "-n", "-v", "-x")
    masq = [line.split() for line in counters.splitlines() if "MASQUERADE" in line]
    assert len(masq) == 1 and int(masq[0][0]) >= 1, counters


def test_encrypted_traffic_between_two_kernel_peers(make_netns: Callable[[str], str]) -> None:
    """A real handshake and ping through two in-kernel wg0s whose UDP rides a veth between namespaces."""
    a, b = make_netns("a"), make_netns("b")
    with IPRoute(netns=a) as ipr:
        ipr.link("add", ifname="eth0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": b})
    keys = {a: _keypair(), b: _keypair()}
    under = {a: "192.0.2.1", b: "192.0.2.2"}
    inner = {a: "10.99.0.1", b: "10.99.0.2"}
    for ns, other in ((a, b), (b, a)):
        nsexec(ns, "ip", "addr", "add", f"{under[ns]}/24", "dev", "eth0")
        nsexec(ns, "ip", "link", "set", "eth0", "up")
        _add_wireguard(ns)
        peer = {
            "public_key": keys[other][1],
            "endpoint_addr": under[other],
            "endpoint_port": LISTEN_PORT,
            "allowed_ips": [f"{inner[other]}/32"],
        }
        with WireGuard(netns=ns) as wg:
            wg.set("wg0", private_key=keys[ns][0], listen_port=LISTEN_PORT, peer=peer)
        nsexec(ns, "ip", "addr", "add", f"{inner[ns]}/24", "dev", "wg0")
        nsexec(ns, "ip", "link", "set", "wg0", "up")

    nsexec(a, "ping", "-c", "3", "-i", "0.2", "-W", "10", inner[b])

    with WireGuard(netns=b) as wg:
        (msg,) = wg.info("wg0")
    (peer_a,) = _attrs(msg)["WGDEVICE_A_PEERS"]
    pa = _attrs(peer_a)
    assert pa["WGPEER_A_LAST_HANDSHAKE_TIME"]["tv_sec"] > 0
    assert pa["WGPEER_A_RX_BYTES"] > 0 and pa["WGPEER_A_TX_BYTES"] > 0
    # Roamed endpoint as the kernel saw it: a's underlay address and port.
    assert (pa["WGPEER_A_ENDPOINT"]["addr"], pa["WGPEER_A_ENDPOINT"]["port"]) == (under[a], LISTEN_PORT)
