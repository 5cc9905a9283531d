"""The daemon's kernel adapter on real in-kernel WireGuard (genetlink backend), inside the VM tier.

Same plan, same adapter as on the host tier, but ``backend="kernel"``: wg0 is created by netlink from the
node namespace directly inside the gateway namespace (its UDP socket stays in the node namespace), keys,
port and peers go through generic netlink, and a second pass over converged state writes nothing.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import netns

from egw.daemon.kernel import GatewayKernel
from egw.dataplane.wg import clamp
from egw.model import crds
from egw.plan import gateway as plan_gateway
from egw.plan import peers as plan_peers
from tests.unit import plan_samples as s

pytestmark = pytest.mark.kernel


def _ns(name: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def node() -> Iterator[str]:
    """A gateway-node namespace with eth0 10.243.0.4/16 (its peer end in a second namespace)."""
    name, far = f"egwk-d-{os.getpid()}-node", f"egwk-d-{os.getpid()}-vnet"
    netns.create(name)
    netns.create(far)
    subprocess.run(["ip", "link", "add", "eth0", "netns", name, "type", "veth", "peer", "p0", "netns", far], check=True)
    _ns(name, "ip", "addr", "add", "10.243.0.4/16", "dev", "eth0")
    _ns(name, "ip", "link", "set", "eth0", "up")
    yield name
    for n in (name, far):
        netns.remove(n)


def test_gateway_on_kernel_wireguard(node: str, tmp_path: Path, modprobe) -> None:  # type: ignore[no-untyped-def]
    modprobe("wireguard")
    priv = os.urandom(32)
    kernel = GatewayKernel(state_dir=tmp_path, node_netns=node, backend="auto")
    assert kernel.backend == "kernel"
    sgc = crds.StaticGatewayConfiguration.from_dict(s.sgc())
    profile = plan_gateway.vm_profile(crds.GatewayVMConfiguration.from_dict(s.vmc()), "gw-node-0")
    assert profile is not None
    plan = plan_gateway.plan_gateway(sgc, profile, plan_gateway.node_facts(s.node(), "eth0"), priv)
    keys = [s.key() for _ in range(3)]
    eps = [s.pe(f"p{i}", f"10.244.0.{20 + i}/32", k) for i, k in enumerate(keys)]
    try:
        kernel.ensure_gateway(plan)
        obs = kernel.sync_peers(plan, plan_peers.plan_peers(plan.netns, eps))
        assert len(obs.peers) == 3 and len(obs.peer_routes) == 3
        assert "wireguard" in _ns(plan.netns, "ip", "-d", "link", "show", "wg0")
        dump = [ln.split("\t") for ln in _ns(plan.netns, "wg", "show", "wg0", "dump").splitlines()]
        priv_text = base64.b64encode(clamp(priv)).decode()
        pub_text = subprocess.run(["wg", "pubkey"], input=priv_text, capture_output=True, text=True).stdout.strip()
        assert (dump[0][0], dump[0][1]) == (priv_text, pub_text)  # the Secret's key, as the kernel stores it
        assert dump[0][2] == "6000"
        assert sorted(p[3] for p in dump[1:]) == [f"10.244.0.{20 + i}/32" for i in range(3)]
        # the UDP socket is in the node namespace, not in the gateway namespace
        assert ":1770" in _ns(node, "cat", "/proc/net/udp") + _ns(node, "cat", "/proc/net/udp6")  # 6000 = 0x1770
        assert ":1770" not in _ns(plan.netns, "cat", "/proc/net/udp") + _ns(plan.netns, "cat", "/proc/net/udp6")
        assert [ln for ln in _ns(plan.netns, "iptables-save", "-t", "nat").splitlines() if ln.startswith("-A")] == [
            "-A POSTROUTING -o host0 -j MASQUERADE"
        ]
        # converged: a second pass writes nothing
        before = kernel.writes
        kernel.ensure_gateway(plan)
        kernel.sync_peers(plan, plan_peers.plan_peers(plan.netns, eps))
        assert kernel.writes == before
        # one peer gone: one batch, its route gone too
        obs = kernel.sync_peers(plan, plan_peers.plan_peers(plan.netns, eps[:2]))
        assert len(obs.peers) == 2 and len(obs.peer_routes) == 2
        assert "10.244.0.22" not in _ns(plan.netns, "ip", "route")
    finally:
        kernel.teardown(plan.netns)
        kernel.close()
    assert not Path(f"/run/netns/{plan.netns}").exists()
    assert "no SNAT" not in _ns(node, "iptables-save", "-t", "nat")
