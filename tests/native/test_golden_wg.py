"""Golden bytes: WireGuard SET messages built by the C encoder vs hand-written layouts; decoder vs replies.

Layouts follow the attribute tree in linux/wireguard.h (WGDEVICE_A_*, WGPEER_A_*, WGALLOWEDIP_A_*).
No root, no kernel: the encoder/decoder are the pure egw_wg_build / egw_wg_parse.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egw.dataplane import _native
from egw.dataplane.wg import plan
from egw.model import net
from tests.dataplane.wgutil import peers as make_peers
from tests.dataplane.wgutil import pod_ip, pub
from tests.native.nlbytes import attr, genl, nest, nlmsg, u8, u16, u32, u64

pytestmark = pytest.mark.unit

FAMILY = 0x1C
NLM_F_REQUEST, NLM_F_MULTI = 1, 2


# linux/wireguard.h
DEV_IFINDEX, DEV_IFNAME, DEV_PRIVATE_KEY, DEV_PUBLIC_KEY, DEV_FLAGS, DEV_LISTEN_PORT, DEV_FWMARK, DEV_PEERS = range(
    1, 9
)
P_PUBLIC_KEY, P_PSK, P_FLAGS, P_ENDPOINT, P_KEEPALIVE, P_HANDSHAKE, P_RX, P_TX, P_AIPS, P_PROTO = range(1, 11)
A_FAMILY, A_IPADDR, A_CIDR = 1, 2, 3
F_REMOVE_ME, F_REPLACE_AIPS, F_UPDATE_ONLY = 1, 2, 4
PRIV = bytes(range(1, 33))


def aip4(net_: str) -> bytes:
    n = ipaddress.ip_network(net_)
    return nest(0, u16(A_FAMILY, socket.AF_INET), attr(A_IPADDR, n.network_address.packed), u8(A_CIDR, n.prefixlen))


def sockaddr_in(ip: str, port: int) -> bytes:
    return struct.pack("!HH4s8x", 0, port, socket.inet_aton(ip)).replace(b"\0\0", struct.pack("=H", 2), 1)


def test_set_one_peer_full_layout() -> None:
    peer = net.WgPeer(
        pub(1), frozenset({pod_ip(1)}), endpoint=net.Endpoint(ipaddress.ip_address("203.0.113.9"), 6000), keepalive=25
    )
    dev = _native.DeviceSpec("wg0", private_key=PRIV, listen_port=51820)
    got, n = _native.wg_build(FAMILY, 7, dev, [(peer, _native.REPLACE_AIPS)])
    expected = nlmsg(
        FAMILY,
        NLM_F_REQUEST,
        7,
        genl(1)
        + attr(DEV_IFNAME, b"wg0\0")
        + attr(DEV_PRIVATE_KEY, PRIV)
        + u16(DEV_LISTEN_PORT, 51820)
        + nest(
            DEV_PEERS,
            nest(
                0,
                attr(P_PUBLIC_KEY, pub(1)),
                u32(P_FLAGS, F_REPLACE_AIPS),
                attr(P_ENDPOINT, sockaddr_in("203.0.113.9", 6000)),
                u16(P_KEEPALIVE, 25),
                nest(P_AIPS, aip4(str(pod_ip(1)))),
            ),
        ),
    )
    assert n == 1
    assert got.hex() == expected.hex()


def test_removal_is_key_and_flag_only() -> None:
    got, _ = _native.wg_build(
        FAMILY, 1, _native.DeviceSpec("wg0"), [(net.WgPeer(pub(2), frozenset({pod_ip(2)})), _native.REMOVE_ME)]
    )
    expected = nlmsg(
        FAMILY,
        NLM_F_REQUEST,
        1,
        genl(1)
        + attr(DEV_IFNAME, b"wg0\0")
        + nest(DEV_PEERS, nest(0, attr(P_PUBLIC_KEY, pub(2)), u32(P_FLAGS, F_REMOVE_ME))),
    )
    assert got == expected


def test_device_only_message_has_no_peers_nest() -> None:
    got, n = _native.wg_build(FAMILY, 3, _native.DeviceSpec("wg0", fwmark=0x2222, replace_peers=True), [])
    assert n == 1
    assert got == nlmsg(
        FAMILY, NLM_F_REQUEST, 3, genl(1) + attr(DEV_IFNAME, b"wg0\0") + u32(DEV_FLAGS, 1) + u32(DEV_FWMARK, 0x2222)
    )


def _messages(buf: bytes) -> list[bytes]:
    out = []
    while buf:
        (length,) = struct.unpack_from("=I", buf)
        out.append(buf[:length])
        buf = buf[(length + 3) & ~3 :]
    return out


def _peers_nest_len(msg: bytes) -> int:
    off = 20
    while off < len(msg):
        length, atype = struct.unpack_from("=HH", msg, off)
        if atype & 0x7FFF == DEV_PEERS:
            return length
        off += (length + 3) & ~3
    return 0


def test_packing_respects_nest_limit_and_sequence_numbers() -> None:
    ops = [(p, 0) for p in sorted(make_peers(3000), key=lambda p: p.public_key)]
    buf, n = _native.wg_build(FAMILY, 100, _native.DeviceSpec("wg0", listen_port=1), ops)
    msgs = _messages(buf)
    assert len(msgs) == n
    # 80 bytes per gateway-style add (spec §1.3): 3000 peers need 4 messages of ≤65000 bytes
    assert n == 4
    assert all(_peers_nest_len(m) <= 65000 for m in msgs)
    assert [struct.unpack_from("=I", m, 8)[0] for m in msgs] == [100, 101, 102, 103]
    # device attributes only in the first message
    assert attr(DEV_LISTEN_PORT, struct.pack("=H", 1)) in msgs[0]
    assert all(u16(DEV_LISTEN_PORT, 1) not in m for m in msgs[1:])


def test_removal_budget_splits_messages() -> None:
    ops = [(net.WgPeer(pub(i)), _native.REMOVE_ME) for i in range(100)] + [
        (net.WgPeer(pub(500), frozenset({pod_ip(1)})), 0)
    ]
    _, n = _native.wg_build(FAMILY, 1, _native.DeviceSpec("wg0"), ops, removal_budget=32)
    assert n == 4 + 1  # 32+32+32+4 removals, then the add in a message of its own


def test_peer_with_many_ips_is_continued_without_replace() -> None:
    ips = frozenset(ipaddress.IPv4Network((0x0A000000 + i, 32)) for i in range(100))
    p = net.WgPeer(pub(9), ips)
    buf, n = _native.wg_build(FAMILY, 1, _native.DeviceSpec("wg0"), [(p, _native.REPLACE_AIPS)], max_nest=1024)
    msgs = _messages(buf)
    assert n == len(msgs) == 3  # 34 + 34 + 32 allowed IPs of 28 bytes in ≤1024-byte nests
    assert u32(P_FLAGS, F_REPLACE_AIPS) in msgs[0]
    assert all(u32(P_FLAGS, F_REPLACE_AIPS) not in m and attr(P_PUBLIC_KEY, pub(9)) in m for m in msgs[1:])
    # the decoder coalesces the continuation back into one peer
    state = _native.wg_parse(buf)
    assert list(state.peers) == [pub(9)]
    assert state.peers[pub(9)].allowed_ips == ips


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=40)),
        min_size=0,
        max_size=60,
        unique_by=lambda t: t[0],
    ),
    st.sampled_from([512, 2048, 65000]),
)
def test_build_parse_round_trip(spec, max_nest) -> None:
    ps = [net.WgPeer(pub(k), frozenset(ipaddress.IPv4Network((a, 32)) for a in ips)) for k, ips in spec]
    buf, n = _native.wg_build(FAMILY, 1, _native.DeviceSpec("wg0"), [(p, 0) for p in ps], max_nest=max_nest)
    msgs = _messages(buf)
    assert len(msgs) == n
    assert all(_peers_nest_len(m) <= max_nest for m in msgs)
    state = _native.wg_parse(buf)
    assert state.peers == {p.public_key: p for p in ps}


def dump_reply() -> bytes:
    """A GET_DEVICE dump as the kernel sends it: two NLM_F_MULTI parts, peer 2 split across them, then DONE."""
    first = nlmsg(
        FAMILY,
        NLM_F_MULTI,
        5,
        genl(0)
        + u32(DEV_IFINDEX, 4)
        + attr(DEV_IFNAME, b"wg0\0")
        + attr(DEV_PRIVATE_KEY, PRIV)
        + attr(DEV_PUBLIC_KEY, bytes(range(32, 64)))
        + u16(DEV_LISTEN_PORT, 6000)
        + u32(DEV_FWMARK, 0)
        + nest(
            DEV_PEERS,
            nest(
                0,
                attr(P_PUBLIC_KEY, pub(1)),
                attr(P_PSK, bytes(32)),
                attr(P_ENDPOINT, sockaddr_in("10.243.0.4", 40000)),
                u16(P_KEEPALIVE, 0),
                attr(P_HANDSHAKE, struct.pack("=qq", 1700000000, 5)),
                u64(P_RX, 1234),
                u64(P_TX, 99),
                nest(P_AIPS, aip4("10.244.0.1/32")),
                u32(P_PROTO, 1),
            ),
            nest(
                0,
                attr(P_PUBLIC_KEY, pub(2)),
                attr(P_PSK, bytes(32)),
                u16(P_KEEPALIVE, 25),
                attr(P_HANDSHAKE, bytes(16)),
                u64(P_RX, 0),
                u64(P_TX, 0),
                nest(P_AIPS, aip4("10.244.0.2/32")),
                u32(P_PROTO, 1),
            ),
        ),
    )
    second = nlmsg(
        FAMILY,
        NLM_F_MULTI,
        5,
        genl(0)
        + u32(DEV_IFINDEX, 4)
        + attr(DEV_IFNAME, b"wg0\0")
        + nest(
            DEV_PEERS,
            nest(0, attr(P_PUBLIC_KEY, pub(2)), nest(P_AIPS, aip4("192.0.2.0/24"))),
            nest(0, attr(P_PUBLIC_KEY, pub(3)), nest(P_AIPS)),
        ),
    )
    done = nlmsg(3, NLM_F_MULTI, 5, struct.pack("=i", 0))
    return first + second + done


def test_decode_multipart_dump_with_split_peer() -> None:
    state = _native.wg_parse(dump_reply())
    assert (state.name, state.ifindex, state.listen_port, state.private_key) == ("wg0", 4, 6000, PRIV)
    assert list(state.peers) == [pub(1), pub(2), pub(3)]
    p1 = state.peers[pub(1)]
    assert p1.endpoint == net.Endpoint(ipaddress.ip_address("10.243.0.4"), 40000)
    assert p1.preshared_key is None and p1.keepalive == 0
    assert state.status[pub(1)].rx_bytes == 1234 and state.status[pub(1)].last_handshake == pytest.approx(1.7e9)
    assert state.peers[pub(2)].allowed_ips == {pod_ip(2), ipaddress.ip_network("192.0.2.0/24")}
    assert state.peers[pub(2)].keepalive == 25
    assert state.peers[pub(3)].allowed_ips == frozenset()


def test_decoder_reports_needed_counts_when_arrays_are_small() -> None:
    state = _native.wg_parse(dump_reply(), cap=1)  # grows from the counts the C side reports
    assert len(state.peers) == 3


def test_plan_for_identical_state_is_empty() -> None:
    desired = net.WgDevice("wg0", listen_port=6000, peers=make_peers(50))
    state = _native.wg_parse(
        _native.wg_build(FAMILY, 1, _native.DeviceSpec("wg0", listen_port=6000), [(p, 0) for p in desired.peers])[0]
    )
    state.listen_port = 6000
    assert not plan(desired, state)


def test_unaligned_last_message_ends_the_walk() -> None:
    """Regression (found by the fuzzer): NLMSG_NEXT's size_t underflow on a final unaligned message."""
    msg = struct.pack("=IHHII", 21, FAMILY, 0, 0, 0) + genl(0) + b"\0"
    assert _native.wg_parse(msg).peers == {}
