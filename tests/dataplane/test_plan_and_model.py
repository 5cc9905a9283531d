"""Pure parts of the dataplane: value-type validation, the keyed diff, and WireGuard's minimal-write plan."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from egw.dataplane import _native
from egw.dataplane.wg import ZERO_KEY, clamp, plan
from egw.model import net
from egw.model.diff import diff
from egw.model.errors import ValidationError
from tests.dataplane.wgutil import pod_ip, pub

pytestmark = pytest.mark.unit


def state(peers: list[net.WgPeer], **kw: object) -> _native.DeviceState:
    fields = dict(name="wg0", ifindex=1, private_key=None, public_key=None, listen_port=0, fwmark=0)
    fields.update(kw)
    return _native.DeviceState(peers={p.public_key: p for p in peers}, status={}, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: net.WgPeer("not-a-key"), "peer.publicKey"),
        (lambda: net.WgPeer(b"\x01" * 31), "peer.publicKey"),
        (lambda: net.WgPeer(base64.b64encode(b"\x01" * 31).decode()), "peer.publicKey"),
        (lambda: net.WgPeer(pub(1), frozenset({"10.0.0.1/33"})), "allowedIPs"),
        (lambda: net.WgPeer(pub(1), frozenset({"10.0.0.1/24"})), "allowedIPs"),  # host bits set
        (lambda: net.WgPeer(pub(1), keepalive=70000), "persistentKeepalive"),
        (lambda: net.WgDevice("wg0-too-long-name"), "device.name"),
        (lambda: net.WgDevice("wg0;reboot"), "device.name"),
        (lambda: net.WgDevice("wg 0"), "device.name"),
        (lambda: net.WgDevice("wg0", private_key=b"short"), "device.privateKey"),
        (lambda: net.Route("10.0.0.0/8"), "route"),
        (lambda: net.Route("10.0.0.0/8", dev="eth0", table=-1), "route.table"),
        (lambda: net.Rule(priority=1, table=2, src="2001:db8::/64"), "rule.src"),
    ],
)
def test_bad_input_names_the_field(make, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make()
    assert field in str(info.value)


def test_private_keys_are_never_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        net.WgDevice("wg0", private_key="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw==x")
    assert "c2VjcmV0" not in str(info.value) and "<redacted>" in str(info.value)
    assert "private_key" not in repr(net.WgDevice("wg0", private_key=bytes(32)))


def test_keys_accept_base64_text() -> None:
    text = base64.b64encode(pub(3)).decode()
    assert net.WgPeer(text).public_key == pub(3)


def test_generic_diff() -> None:
    d = diff({1: "a", 2: "b", 3: "c"}, {2: "b", 3: "x", 4: "d"})
    assert (d.add, d.change, d.remove) == ({1: "a"}, {3: ("x", "c")}, {4: "d"})
    assert not diff({1: 1}, {1: 1})


def test_plan_identical_is_empty() -> None:
    peers = [net.WgPeer(pub(i), frozenset({pod_ip(i)})) for i in range(5)]
    assert not plan(net.WgDevice("wg0", peers=frozenset(peers)), state(peers))


def test_plan_orders_removals_first_and_sends_only_new_ips_without_replace() -> None:
    old = [net.WgPeer(pub(i), frozenset({pod_ip(i)})) for i in range(3)]
    grown = net.WgPeer(pub(1), frozenset({pod_ip(1), pod_ip(100)}))
    shrunk = net.WgPeer(pub(2), frozenset({pod_ip(200)}))
    new = net.WgPeer(pub(9), frozenset({pod_ip(9)}))
    p = plan(net.WgDevice("wg0", peers=frozenset({grown, shrunk, new})), state(old))
    assert (p.added, p.changed, p.removed) == (1, 2, 1)
    assert p.ops[0] == (old[0], _native.REMOVE_ME)
    by_key = {peer.public_key: (peer, flags) for peer, flags in p.ops[1:]}
    assert by_key[pub(1)] == (net.WgPeer(pub(1), frozenset({pod_ip(100)})), 0)  # only the new IP, no REPLACE
    assert by_key[pub(2)] == (shrunk, _native.REPLACE_AIPS)  # lost an IP: replace
    assert by_key[pub(9)] == (new, 0)


def test_plan_ignores_learned_endpoints_and_clears_dropped_psk() -> None:
    learned = net.WgPeer(
        pub(1), frozenset({pod_ip(1)}), endpoint=net.Endpoint(ipaddress.ip_address("10.243.0.4"), 40000)
    )
    assert not plan(
        net.WgDevice("wg0", peers=frozenset({net.WgPeer(pub(1), frozenset({pod_ip(1)}))})), state([learned])
    )
    with_psk = net.WgPeer(pub(2), frozenset(), preshared_key=bytes([7]) * 32)
    p = plan(net.WgDevice("wg0", peers=frozenset({net.WgPeer(pub(2))})), state([with_psk]))
    assert p.ops[0][0].preshared_key == ZERO_KEY


def test_plan_compares_private_keys_after_clamping() -> None:
    raw = bytes(range(1, 33))
    assert not plan(net.WgDevice("wg0", private_key=raw), state([], private_key=clamp(raw)))
    p = plan(net.WgDevice("wg0", private_key=raw, listen_port=6000), state([], private_key=clamp(raw)))
    assert p.device is not None and p.device.private_key is None and p.device.listen_port == 6000
