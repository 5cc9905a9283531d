"""Golden text: the UAPI `set=1` transaction built in C, and the `get=1` reply decoder (wireguard-go's grammar)."""

from __future__ import annotations

import ipaddress

import pytest

from egw.dataplane import _native
from egw.model import net
from tests.dataplane.wgutil import pod_ip, pub

pytestmark = pytest.mark.unit

PRIV = bytes(range(1, 33))


def test_set_transaction_text() -> None:
    peer = net.WgPeer(
        pub(1),
        frozenset({pod_ip(1), ipaddress.ip_network("2001:db8::/64")}),
        endpoint=net.Endpoint(ipaddress.ip_address("2001:db8::9"), 6000),
        keepalive=25,
        preshared_key=bytes(32 * [7]),
    )
    text = _native.uapi_build(
        _native.DeviceSpec("wg0", private_key=PRIV, listen_port=6000, fwmark=0x2222),
        [
            (net.WgPeer(pub(2)), _native.REMOVE_ME),
            (peer, _native.REPLACE_AIPS),
            (net.WgPeer(pub(3)), _native.UPDATE_ONLY),
        ],
    )
    assert text == (
        "set=1\n"
        f"private_key={PRIV.hex()}\n"
        "listen_port=6000\n"
        "fwmark=8738\n"
        f"public_key={pub(2).hex()}\n"
        "remove=true\n"
        f"public_key={pub(1).hex()}\n"
        f"preshared_key={'07' * 32}\n"
        "endpoint=[2001:db8::9]:6000\n"
        "persistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=10.244.0.1/32\n"
        "allowed_ip=2001:db8::/64\n"
        f"public_key={pub(3).hex()}\n"
        "update_only=true\n"
        "\n"
    )


REPLY = (
    f"private_key={PRIV.hex()}\n"
    "listen_port=6000\n"
    f"public_key={pub(1).hex()}\n"
    f"preshared_key={'00' * 32}\n"
    "protocol_version=1\n"
    "endpoint=10.243.0.4:40000\n"
    "last_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=5\n"
    "tx_bytes=99\n"
    "rx_bytes=1234\n"
    "persistent_keepalive_interval=0\n"
    "allowed_ip=10.244.0.1/32\n"
    f"public_key={pub(2).hex()}\n"
    "endpoint=[2001:db8::9]:51820\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.244.0.2/32\n"
    "allowed_ip=192.0.2.0/24\n"
    "errno=0\n"
    "\n"
)


def test_get_reply_decoding() -> None:
    state = _native.uapi_parse(REPLY)
    assert (state.private_key, state.listen_port, state.fwmark) == (PRIV, 6000, 0)
    assert list(state.peers) == [pub(1), pub(2)]
    p1, p2 = state.peers[pub(1)], state.peers[pub(2)]
    assert p1.endpoint == net.Endpoint(ipaddress.ip_address("10.243.0.4"), 40000)
    assert p1.preshared_key is None and p1.allowed_ips == {pod_ip(1)}
    assert state.status[pub(1)].rx_bytes == 1234
    assert p2.endpoint == net.Endpoint(ipaddress.ip_address("2001:db8::9"), 51820)
    assert p2.keepalive == 25 and p2.allowed_ips == {pod_ip(2), ipaddress.ip_network("192.0.2.0/24")}


def test_get_reply_small_arrays_grow() -> None:
    assert len(_native.uapi_parse(REPLY, cap=1).peers) == 2


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("errno=22\n\n", 22),
        ("public_key=zz\n\n", 74),
        ("listen_port=99999\n\n", 74),
        ("allowed_ip=10.0.0.0/33\n\n", 74),
    ],
)
def test_get_reply_errors(text: str, code: int) -> None:
    if text.startswith("allowed_ip"):
        text = f"public_key={pub(1).hex()}\n" + text
    with pytest.raises(_native.NativeError) as info:
        _native.uapi_parse(text)
    assert info.value.errno == code
