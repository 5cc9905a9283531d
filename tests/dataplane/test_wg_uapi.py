"""The WireGuard dataplane against real wireguard-go (UAPI backend, netns tier).

Set up → sync → read back with the device's own tool (``wg show dump``) and with our reader → compare;
then the no-op proof: a second identical sync sends no transaction.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest

from egw.dataplane import _native
from egw.dataplane.wg import WireGuard, clamp
from egw.model import net
from tests.dataplane.wgutil import peers, pod_ip, pub

pytestmark = pytest.mark.netns

PRIV = clamp(bytes(range(1, 33)))


@pytest.fixture
def dev(netns_factory, wg_factory):
    node = netns_factory("node")
    d = wg_factory(node)
    with WireGuard(d.name, netns=node.name, backend="uapi", uapi_path=d.uapi_path) as wg:
        yield d, wg


def b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


def test_auto_backend_falls_back_to_uapi_on_this_kernel(netns_factory, wg_factory) -> None:
    node = netns_factory("node")
    d = wg_factory(node)
    with WireGuard(d.name, netns=node.name, uapi_path=d.uapi_path) as wg:
        assert wg.backend == "uapi"
        assert wg.read().peers == {}


@pytest.mark.parametrize("n", [1, 100, 5000])
def test_sync_adds_then_noop(dev, n: int) -> None:
    d, wg = dev
    desired = net.WgDevice(d.name, private_key=PRIV, listen_port=51820, peers=peers(n))
    report = wg.sync(desired)
    assert (report.added, report.changed, report.removed, report.messages) == (n, 0, 0, 1)
    shown = d.show()
    assert shown.listen_port == 51820
    assert len(shown.peers) == n
    assert shown.peers[b64(pub(n - 1))].allowed_ips == [str(pod_ip(n - 1))]
    state = wg.read()
    assert set(state.peers) == {pub(i) for i in range(n)}
    assert state.private_key == PRIV
    again = wg.sync(desired)
    assert (again.added, again.changed, again.removed, again.messages) == (0, 0, 0, 0)
    assert wg.stats.messages == 1


def test_churn_add_remove_and_allowed_ip_replacement(dev) -> None:
    d, wg = dev
    wg.sync(net.WgDevice(d.name, private_key=PRIV, peers=peers(100)))
    desired = set(peers(90, start=10)) | set(peers(20, start=100))
    grown = net.WgPeer(pub(50), frozenset({pod_ip(50), ipaddress.ip_network("192.0.2.0/24")}))
    moved = net.WgPeer(pub(60), frozenset({ipaddress.ip_network("198.51.100.7/32")}))
    desired = {p for p in desired if p.public_key not in (pub(50), pub(60))} | {grown, moved}
    report = wg.sync(net.WgDevice(d.name, peers=frozenset(desired)))
    assert (report.added, report.changed, report.removed) == (20, 2, 10)
    shown = d.show()
    assert len(shown.peers) == 110
    assert b64(pub(0)) not in shown.peers
    assert sorted(shown.peers[b64(pub(50))].allowed_ips) == sorted([str(pod_ip(50)), "192.0.2.0/24"])
    assert shown.peers[b64(pub(60))].allowed_ips == ["198.51.100.7/32"]
    assert wg.sync(net.WgDevice(d.name, peers=frozenset(desired))).messages == 0


def test_endpoint_keepalive_and_psk_round_trip(dev) -> None:
    d, wg = dev
    p = net.WgPeer(
        pub(1),
        frozenset({pod_ip(1), ipaddress.ip_network("2001:db8::/64")}),
        endpoint=net.Endpoint(ipaddress.ip_address("203.0.113.9"), 6000),
        keepalive=25,
        preshared_key=bytes(range(32)),
    )
    wg.sync(net.WgDevice(d.name, peers=frozenset({p})))
    got = wg.read().peers[pub(1)]
    assert got == p
    assert d.show().peers[b64(pub(1))].endpoint == "203.0.113.9:6000"
    # dropping the preshared key must clear it on the device
    plain = net.WgPeer(p.public_key, p.allowed_ips, p.endpoint, 25)
    assert wg.sync(net.WgDevice(d.name, peers=frozenset({plain}))).changed == 1
    assert wg.read().peers[pub(1)].preshared_key is None


def test_bad_socket_is_a_typed_error(dev) -> None:
    d, _ = dev
    with WireGuard(d.name, backend="uapi", uapi_path=d.uapi_path + ".missing") as wg:
        with pytest.raises(_native.PermanentNativeError) as info:
            wg.read()
    assert info.value.errno == 2
