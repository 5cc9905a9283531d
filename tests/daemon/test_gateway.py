"""The gateway daemon end to end: real kube-apiserver, real namespaces/veth/iptables, wireguard-go.

The seed's picture (troubleshooting.md): pod node 10.243.4.4 with pod 10.244.0.20, gateway node
10.243.0.4, ILB frontend 10.243.0.6:6000, secondary IP 10.243.0.7, an "internet" namespace. The test plays
the controller (SGC status, Secret, GatewayVMConfiguration profiles) and the CNI plugin (pod-side wg0 and the
PodEndpoint); the daemon must build everything else, exactly as the seed shows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

if importlib.util.find_spec("tests.fixtures.apiserver") is None:  # the control-plane fixture lands separately
    pytest.skip("tests/fixtures/apiserver.py is not on this branch yet", allow_module_level=True)

from egw.k8s import client as k8s
from tests.daemon.harness import Gateway, World, wait_for
from tests.fixtures.netns import Netns, run
from tests.fixtures.packets import Probe, send_and_capture
from tests.fixtures.topology import Topology
from tests.fixtures.wggo import Peer, WgFactory, genkey

pytestmark = [pytest.mark.netns, pytest.mark.apiserver]

ILB = "10.243.0.6"
PORT = 6000
SECONDARY = "10.243.0.7"
PRIMARY = "10.243.0.4"
INTERNET_HOST = "203.0.113.10"


def _pod_tunnel(topo: Topology, wg_factory: WgFactory, gw: Gateway, pod_priv: str) -> None:
    """What the CNI plugin does in the pod: wg0 born in the pod's node, default route via fe80::1."""
    node, pod = topo.nodes["node"], topo.pods["pod-a"]
    dev = wg_factory(node.ns)
    dev.configure(
        private_key=pod_priv, peers=[Peer(gw.public_key, endpoint=f"{ILB}:{PORT}", allowed_ips=["0.0.0.0/0"])]
    )
    dev.move(pod.ns, "wg0")
    link_local = next(a for a in pod.ns.addresses("eth0") if a.startswith("fe80::"))
    pod.ns.ip_batch([f"addr add {link_local} dev wg0", "route del default", f"route add {pod.gateway} dev eth0"])
    pod.ns.ip("-4", "route", "add", "default", "via", "inet6", "fe80::1", "dev", "wg0")


def _gw_ns(gw: Gateway) -> Netns:
    return Netns(gw.netns)


def _ready(w: World, gw: Gateway, peers: int) -> bool:
    st = w.gateway_status()
    if w.probe(gw.uid) != 200 or st is None:
        return False
    return len(st["spec"].get("readyPeerConfigurations") or []) == peers


def _ping(ns: Netns, count: int, interval: float = 0.05) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns.name, "ping", "-n", "-q", "-i", str(interval), "-c", str(count), "-W", "1",
         INTERNET_HOST],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _ping_result(proc: subprocess.Popen[str]) -> tuple[int, int]:
    out, _ = proc.communicate(timeout=120)
    line = next(ln for ln in out.splitlines() if "transmitted" in ln)
    sent = int(line.split()[0])
    received = int(line.split(",")[1].split()[0])
    return sent, received


_ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(60)
while data := c.recv(65536):
    c.sendall(data)
"""
_STREAM_CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 8080), timeout=30)
n, deadline = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    msg = b"x" * 100
    c.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = c.recv(100 - len(got))
        if not chunk:
            sys.exit("connection closed by peer")
        got += chunk
    n += 1
    time.sleep(0.02)
print("ok", n, flush=True)
"""


def _tcp_stream(
    server_ns: Netns, client_ns: Netns, seconds: float
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """A TCP echo flow from the pod to the internet, one message every 20 ms for ``seconds``."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns.name, sys.executable, "-c", _ECHO_SERVER, INTERNET_HOST],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    client = subprocess.Popen(
        ["ip", "netns", "exec", client_ns.name, sys.executable, "-c", _STREAM_CLIENT, INTERNET_HOST, str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return server, client


def test_seed_layout_traffic_status_probe_and_metrics(world: tuple[World, Topology], wg_factory: WgFactory) -> None:
    w, topo = world
    gwnode, pod, inet = topo.nodes["gwnode"].ns, topo.pods["pod-a"], topo.internet
    assert inet is not None
    gw = w.create_gateway("gw001", ILB, PORT, SECONDARY, PRIMARY)
    pod_priv, pod_pub = genkey()
    w.create_pod_endpoint("pod-a", "10.244.0.20/32", pod_pub)
    w.start()
    wait_for(lambda: _ready(w, gw, 1), what=f"gateway ready; daemon log:\n{w.log()[-3000:]}")

    # --- the gateway namespace, as `ip netns exec gw-... ip addr / ip route / iptables-save / wg` show it
    ns = _gw_ns(gw)
    assert gw.netns == f"gw-{gw.uid}-10_243_0_6"
    links = ns.links()
    assert set(links) == {"lo", "wg0", "host0"}
    assert ns.addresses("wg0") == ["fe80::1/64"]
    assert [a for a in ns.addresses("host0") if not a.startswith("fe80::")] == [f"{SECONDARY}/32"]
    routes = {(r["dst"], r.get("gateway"), r["dev"], r.get("scope")) for r in ns.routes()}
    assert routes == {
        ("default", PRIMARY, "host0", None),
        (PRIMARY, None, "host0", "link"),
        ("10.244.0.20", None, "wg0", "link"),
    }
    nat = [ln for ln in ns.iptables_save("nat").splitlines() if ln.startswith("-A")]
    assert nat == ["-A POSTROUTING -o host0 -j MASQUERADE"]
    assert ns.exec("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    dump = [ln.split("\t") for ln in w.wg_show(gw).splitlines()]
    assert dump[0][1] == gw.public_key and dump[0][2] == str(PORT)  # public key, listening port
    assert [(p[0], p[3]) for p in dump[1:]] == [(pod_pub, "10.244.0.20/32")]
    # wg0's UDP socket lives in the gateway node's namespace (born there), not in the gateway namespace
    assert f":{PORT}" in run(["ip", "netns", "exec", gwnode.name, "ss", "-uln"])
    assert f":{PORT}" not in run(["ip", "netns", "exec", gw.netns, "ss", "-uln"])

    # --- the node side: veth host end, route, nat exemption, ILB /32 marked as ours
    host_veth = f"gw-{gw.uid[:8]}"
    assert gwnode.links()[host_veth]["operstate"] in ("UP", "LOWERLAYERDOWN", "UNKNOWN")
    assert {(r["dst"], r["dev"]) for r in gwnode.routes()} >= {(SECONDARY, host_veth)}
    exemption = (
        f'-A POSTROUTING -s {SECONDARY}/32 -m comment --comment "no SNAT for traffic from netns {gw.netns}" -j RETURN'
    )
    assert exemption in gwnode.iptables_save("nat").splitlines()
    eth0 = json.loads(run(["ip", "-n", gwnode.name, "-j", "addr", "show", "dev", "eth0"]))[0]["addr_info"]
    assert {(a["local"], a["prefixlen"], a.get("label")) for a in eth0 if a["family"] == "inet"} == {
        (PRIMARY, 16, "eth0"),
        (ILB, 32, "eth0:egress"),
    }

    # --- GatewayStatus (read back from the kernel), owned by the Node
    st = w.gateway_status()
    assert st is not None
    assert st["spec"]["readyGatewayNamespaces"] == [{"netnsName": gw.netns, "staticGatewayConfiguration": gw.key}]
    assert st["spec"]["readyPeerConfigurations"] == [
        {"netnsName": gw.netns, "podEndpoint": f"{w.namespace}/pod-a", "publicKey": pod_pub}
    ]
    assert st["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert st["status"] == {"readyGateways": 1, "readyPeers": 1}

    # --- traffic: the pod's packets reach the internet from the secondary IP, replies come back
    _pod_tunnel(topo, wg_factory, gw, pod_priv)
    cap = send_and_capture(
        pod.ns, [Probe("icmp", INTERNET_HOST), Probe("tcp", INTERNET_HOST, dport=443)], inet.ns, inet.bridge
    )
    echo, syn_ack = cap.replies
    assert echo is not None and echo["ICMP"].type == 0 and echo.dst == "10.244.0.20"
    assert syn_ack is not None
    assert cap.sources(INTERNET_HOST) == {SECONDARY}
    dump = [ln.split("\t") for ln in w.wg_show(gw).splitlines()]
    assert dump[1][2].startswith("10.243.4.4:") and int(dump[1][4]) > 0  # endpoint learned, handshake done

    # --- probe codes and metrics
    assert w.probe("00000000-0000-0000-0000-000000000000") == 503
    from tests.daemon.harness import http_get

    assert http_get(f"http://127.0.0.1:{w.probe_port}/gw/")[0] == 400
    assert http_get(f"http://127.0.0.1:{w.probe_port}/other/{gw.uid}")[0] == 400
    m = w.metrics()
    assert m["egw_daemon_gateways"] == 1
    assert m[f'egw_daemon_peers{{gateway="{gw.key}"}}'] == 1
    assert any(k.startswith("egw_daemon_reconcile_duration_seconds_count") for k in m)
    assert any(k.startswith("egw_daemon_peer_sync_duration_seconds_count") for k in m)
    logs = [json.loads(ln) for ln in w.log().splitlines() if ln.startswith("{")]
    assert any(rec.get("object", {}).get("key") == gw.key for rec in logs)
    assert gw.private_key not in w.log()

    # --- drift is repaired by the periodic resync: a deleted rule, peer, route and exemption come back
    ns.iptables_restore("*nat\n-F POSTROUTING\nCOMMIT\n")
    run(["wg", "set", gw.birth, "peer", pod_pub, "remove"])
    ns.ip("route", "del", "10.244.0.20/32", "dev", "wg0", check=False)
    gwnode.iptables_restore(f"*nat\n{exemption.replace('-A ', '-D ', 1)}\nCOMMIT\n")
    wait_for(
        lambda: (
            "-A POSTROUTING -o host0 -j MASQUERADE" in ns.iptables_save("nat")
            and pod_pub in w.wg_show(gw)
            and "10.244.0.20" in {r["dst"] for r in ns.routes()}
            and exemption in gwnode.iptables_save("nat").splitlines()
        ),
        timeout=30,
        what="drift repaired by the resync",
    )

    # --- drain on SIGTERM: 503 at once, exit 0 after the drain delay, datapath left in place
    w.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    wait_for(lambda: w.probe(gw.uid) == 503, timeout=5, what="503 while draining")
    assert w.proc.poll() is None  # type: ignore[union-attr]
    assert w.proc.wait(timeout=30) == 0  # type: ignore[union-attr]
    assert Netns(gw.netns).exists()
    assert ns.routes()


def test_restart_with_traffic_writes_nothing(world: tuple[World, Topology], wg_factory: WgFactory) -> None:
    w, topo = world
    pod = topo.pods["pod-a"]
    gw = w.create_gateway("gw001", ILB, PORT, SECONDARY, PRIMARY)
    pod_priv, pod_pub = genkey()
    w.create_pod_endpoint("pod-a", "10.244.0.20/32", pod_pub)
    w.start()
    wait_for(lambda: _ready(w, gw, 1), what="gateway ready")
    _pod_tunnel(topo, wg_factory, gw, pod_priv)
    ping = _ping(pod.ns, 200)  # ~10 s of continuous traffic through the tunnel
    inet = topo.internet
    assert inet is not None
    server, client = _tcp_stream(inet.ns, pod.ns, 9.0)  # and an established TCP flow across the restart
    time.sleep(1.0)
    # the kernel's own IPv6 duplicate address detection on host0 must be over: it is not our write
    wait_for(lambda: not run(["ip", "-n", gw.netns, "-6", "addr", "show", "tentative"]).strip(), what="DAD done")
    # rtnetlink monitors on both namespaces count every kernel change during the restart
    monitors = [
        subprocess.Popen(["ip", "-n", name, "-o", "monitor", "link", "address", "route"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
        for name in (gw.netns, topo.nodes["gwnode"].ns.name)
    ]  # fmt: skip
    nat_before = (Netns(gw.netns).iptables_save("nat"), topo.nodes["gwnode"].ns.iptables_save("nat"))
    w.kill(signal.SIGKILL)
    w.start()
    wait_for(lambda: w.probe(gw.uid) == 200, what="probe after restart")
    wait_for(lambda: w.metrics().get('egw_daemon_reconcile_duration_seconds_count{kind="gc"}', 0) >= 1, what="a gc")
    time.sleep(1.0)
    for mon in monitors:
        mon.terminate()
    changes = [mon.communicate(timeout=10)[0].strip() for mon in monitors]
    sent, received = _ping_result(ping)
    print(f"restart: {sent} pings sent, {received} received, kernel writes {w.kernel_writes()}")
    assert w.kernel_writes() == 0
    assert changes == ["", ""]
    strip = lambda s: [ln for ln in s.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert [strip(x) for x in nat_before] == [
        strip(Netns(gw.netns).iptables_save("nat")),
        strip(topo.nodes["gwnode"].ns.iptables_save("nat")),
    ]
    assert sent - received <= 2, f"lost {sent - received} of {sent} pings across the restart"
    out, _ = client.communicate(timeout=60)
    server.kill()
    server.wait()
    assert client.returncode == 0 and out.startswith("ok "), f"TCP flow broken across the restart: {out}"
    print(f"restart: TCP flow kept, {out.split()[1]} echoes")

    # --- wireguard-go dies: the daemon notices, starts a new one and re-applies key, port and peers
    pid_file = w.state_dir / f"{gw.birth}.pid"
    old_pid = int(pid_file.read_text())
    os.kill(old_pid, signal.SIGKILL)

    def current_pid() -> int:
        try:
            return int(pid_file.read_text())
        except (OSError, ValueError):  # between the old process's cleanup and the new one's start
            return 0

    wait_for(lambda: current_pid() not in (0, old_pid), what="a new wireguard-go")
    wait_for(lambda: w.probe(gw.uid) == 200, what="probe healthy again")
    dump = [ln.split("\t") for ln in w.wg_show(gw).splitlines()]
    assert dump[0][1] == gw.public_key and dump[0][2] == str(PORT)
    wait_for(lambda: [ln.split("\t")[3] for ln in w.wg_show(gw).splitlines()[1:]] == ["10.244.0.20/32"], what="peer")
    assert {r["dst"] for r in Netns(gw.netns).routes()} >= {"10.244.0.20", "default"}


def test_invalid_endpoints_gc_and_apiserver_outage(
    world: tuple[World, Topology], wg_factory: WgFactory, control_plane: Any
) -> None:
    w, topo = world
    gwnode, pod = topo.nodes["gwnode"].ns, topo.pods["pod-a"]
    gw = w.create_gateway("gw001", ILB, PORT, SECONDARY, PRIMARY)
    pod_priv, pod_pub = genkey()
    w.create_pod_endpoint("pod-a", "10.244.0.20/32", pod_pub)
    # invalid: the same key as pod-a (newer, so it loses), and an IP that is not its Pod's
    dup = w.create_pod_endpoint("dup-key", "10.244.0.30/32", pod_pub)
    pod_obj = w.api.create(
        k8s.PODS, {"metadata": {"name": "pod-b"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}, w.namespace
    )
    pod_obj["status"] = {"podIP": "10.244.0.99", "podIPs": [{"ip": "10.244.0.99"}]}
    w.api.replace_status(k8s.PODS, pod_obj)
    wrong = w.create_pod_endpoint("pod-b", "10.244.0.21/32", genkey()[1])
    # gateways of one pool share the ILB frontend IP (one LB rule port each)
    gw2 = w.create_gateway("gw002", ILB, PORT + 1, "10.243.0.17", PRIMARY)
    broken = w.create_gateway("gw003", "10.243.0.26", PORT + 2, "10.243.0.27", PRIMARY)
    w.api.delete(k8s.SECRETS, "gw003", w.namespace)  # its key is unreadable: gw003 cannot be built
    w.start()
    wait_for(lambda: _ready(w, gw, 1), what="gateway ready with only the valid peer")
    wait_for(lambda: w.probe(gw2.uid) == 200, what="second gateway ready")
    assert w.probe(broken.uid) == 503 and not Netns(broken.netns).exists()
    # deleting a gateway while the daemon runs removes exactly its namespace and node state
    w.api.delete(k8s.STATIC_GATEWAY_CONFIGURATIONS, "gw002", w.namespace)
    wait_for(lambda: not Netns(gw2.netns).exists(), what="deleted gateway's namespace removed")
    assert w.probe(gw2.uid) == 503
    assert f"gw-{gw2.uid[:8]}" not in gwnode.links() and "10.243.0.17" not in gwnode.ip("-4", "route")
    assert gw2.netns not in gwnode.iptables_save("nat")
    # the shared ILB IP stays: gw001 still uses it
    assert w.probe(gw.uid) == 200 and Netns(gw.netns).exists() and f"{ILB}/32" in gwnode.ip("-4", "addr")
    ev = wait_for(lambda: w.events_for(dup["metadata"]["uid"]), what="event on the duplicate")
    assert ev[0]["type"] == "Warning" and ev[0]["reason"] == "InvalidPodEndpoint"
    assert (
        f'spec.podPublicKey: invalid value "{pod_pub}": already used by PodEndpoint {w.namespace}/pod-a'
        in ev[0]["message"]
    )
    ev = wait_for(lambda: w.events_for(wrong["metadata"]["uid"]), what="event on the wrong IP")
    assert 'spec.podIpAddress: invalid value "10.244.0.21/32": does not match the IPs of Pod' in ev[0]["message"]
    assert [ln.split("\t")[3] for ln in w.wg_show(gw).splitlines()[1:]] == ["10.244.0.20/32"]
    assert w.metrics()[f'egw_daemon_invalid_podendpoints{{gateway="{gw.key}"}}'] == 2

    # --- API server stalled (SIGSTOP) while traffic flows: datapath untouched, daemon keeps running
    _pod_tunnel(topo, wg_factory, gw, pod_priv)
    ping = _ping(pod.ns, 160)
    apiserver = control_plane.pids["kube-apiserver"]
    os.kill(apiserver, signal.SIGSTOP)
    try:
        time.sleep(6)
        assert w.proc.poll() is None  # type: ignore[union-attr]
        assert w.probe(gw.uid) == 200
    finally:
        os.kill(apiserver, signal.SIGCONT)
    sent, received = _ping_result(ping)
    assert sent - received <= 2, f"lost {sent - received} of {sent} pings while the API server was stopped"
    # after the outage new work is picked up again
    k2 = genkey()[1]
    w.create_pod_endpoint("pod-c", "10.244.0.22/32", k2)
    wait_for(lambda: _ready(w, gw, 2), timeout=90, what="new peer after the API server came back")

    # --- a stale namespace (SGC deleted while the daemon was down) is garbage-collected
    w.kill(signal.SIGKILL)
    w.api.delete(k8s.STATIC_GATEWAY_CONFIGURATIONS, "gw001", w.namespace)
    assert Netns(gw.netns).exists()
    w.start()
    wait_for(lambda: not Netns(gw.netns).exists(), what="stale gateway namespace removed")
    host_veth = f"gw-{gw.uid[:8]}"
    wait_for(lambda: host_veth not in gwnode.links(), what="veth host end gone")
    assert "no SNAT for traffic from netns" not in gwnode.iptables_save("nat")
    assert ILB not in gwnode.ip("-4", "addr", "show", "dev", "eth0")
    assert SECONDARY not in {r["dst"] for r in gwnode.routes()}
    wait_for(lambda: (w.gateway_status() or {}).get("spec", {}).get("readyGatewayNamespaces") == [], what="status")
    assert not (w.gateway_status() or {})["spec"].get("readyPeerConfigurations")
