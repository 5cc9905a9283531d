"""rtnetlink batches against the real kernel in throwaway namespaces (netns tier).

Set up a namespace with a dummy link → sync routes/rules → read back with ``ip -j`` → compare; a
second identical sync sends nothing; routes owned by others are never touched.
"""

from __future__ import annotations

import errno
import ipaddress

import pytest

from egw.dataplane import _native
from egw.dataplane.rtnl import Rtnl
from egw.model import net

pytestmark = pytest.mark.netns


@pytest.fixture
def ns(netns):
    netns.ip("link", "add", "d0", "type", "veth", "peer", "name", "d1")
    netns.ip("link", "set", "d1", "up")
    netns.ip("link", "set", "d0", "up")
    netns.ip("addr", "add", "192.0.2.1/24", "dev", "d0")
    return netns


def routes(n: int, table: int = 254) -> list[net.Route]:
    base = int(ipaddress.IPv4Address("10.244.0.0"))
    return [
        net.Route(ipaddress.IPv4Network((base + i, 32)), dev="d0", scope=net.SCOPE_LINK, table=table) for i in range(n)
    ]


def test_sync_routes_add_noop_change_remove(ns) -> None:
    foreign = "198.51.100.0/24"
    ns.ip("route", "add", foreign, "dev", "d0")  # someone else's route: must survive every sync
    with Rtnl(ns.name) as rt:
        desired = routes(1000)
        r = rt.sync_routes(desired)
        assert (r.added, r.removed, r.messages) == (1000, 0, 1000)
        shown = ns.routes("proto", str(net.RTPROT_EGW))
        assert len(shown) == 1000
        assert rt.sync_routes(desired).messages == 0
        # replace half with a different table, drop 100, add 10 IPv6
        v6 = [net.Route(ipaddress.ip_network(f"2001:db8::{i:x}/128"), dev="d0") for i in range(1, 11)]
        desired2 = desired[100:] + v6
        r = rt.sync_routes(desired2)
        assert (r.added, r.changed, r.removed) == (10, 0, 100)
        assert rt.sync_routes(desired2).messages == 0
        assert len(ns.routes("proto", str(net.RTPROT_EGW))) == 900
        assert len(ns.routes("proto", str(net.RTPROT_EGW), family="-6")) == 10
        rt.sync_routes([])
        assert ns.routes("proto", str(net.RTPROT_EGW)) == []
    assert any(x["dst"] == foreign for x in ns.routes())


def test_route_in_other_table_and_via_gateway(ns) -> None:
    with Rtnl(ns.name) as rt:
        desired = [
            net.Route(ipaddress.ip_network("0.0.0.0/0"), gateway=ipaddress.ip_address("192.0.2.254"), table=8738),
            net.Route(ipaddress.ip_network("203.0.113.0/24"), dev="d0", metric=50, scope=net.SCOPE_LINK),
        ]
        rt.sync_routes(desired)
        got = {r.key: r for r in rt.routes()}
        assert set(got) == {r.key for r in desired}
        assert got[desired[1].key] == desired[1]
        assert got[desired[0].key].dev == "d0"  # resolved by the kernel from the gateway
        shown = ns.routes("table", "8738")
        assert shown[0]["gateway"] == "192.0.2.254"
        assert rt.sync_routes(desired).messages == 0


def test_error_attribution_mid_batch(ns) -> None:
    with Rtnl(ns.name) as rt:
        idx = rt.link_index("d0")
        good = [rt._route_op(r, _native.OP_REPLACE) for r in routes(5)]
        # a gateway that is not on any connected network: the kernel refuses this one op only
        bad = _native.RtOp(
            kind=_native.RT_ROUTE,
            op=_native.OP_ADD,
            family=_native.AF_INET,
            dst=ipaddress.ip_address("203.0.113.0").packed,
            dst_len=24,
            gateway=ipaddress.ip_address("100.64.0.1").packed,
            oif=idx,
            table=254,
            protocol=net.RTPROT_EGW,
        )
        results = rt.apply([*good[:2], bad, *good[2:]])
        assert results[2] == -errno.ENETUNREACH
        assert [r for i, r in enumerate(results) if i != 2] == [0, 0, 0, 0, 0]
        assert len(ns.routes("proto", str(net.RTPROT_EGW))) == 5


def test_sync_rules(ns) -> None:
    with Rtnl(ns.name) as rt:
        desired = [
            net.Rule(priority=1000, table=8738, fwmark=0x2222),
            net.Rule(priority=1001, table=100, src=ipaddress.ip_network("10.244.0.0/16")),
        ]
        assert rt.sync_rules(desired).added == 2
        assert set(rt.rules()) == set(desired)
        assert rt.sync_rules(desired).messages == 0
        shown = ns.ip_json("rule", "show")
        assert any(x.get("fwmark") == "0x2222" and x.get("table") == "8738" for x in shown)
        assert rt.sync_rules(desired[:1]).removed == 1
        assert set(rt.rules()) == set(desired[:1])


def test_addresses_and_link_created_in_target_namespace(netns_factory) -> None:
    node, pod = netns_factory("node"), netns_factory("pod")
    with Rtnl(node.name) as rt:
        rt.link_add("egwd0", "bridge", target_netns=pod.name)
    assert "egwd0" in pod.links()
    assert "egwd0" not in node.links()
    with Rtnl(pod.name) as rt:
        rt.link_set("egwd0", up=True, mtu=1420)
        added = rt.ensure_addresses([net.Address("egwd0", ipaddress.ip_interface("fe80::1/64"), net.SCOPE_LINK)])
        assert added == 1
        assert rt.ensure_addresses([net.Address("egwd0", ipaddress.ip_interface("fe80::1/64"), 253)]) == 0
        assert "fe80::1/64" in pod.addresses("egwd0")
        assert pod.links()["egwd0"]["mtu"] == 1420
        assert rt.link_del("egwd0") is True
        assert rt.link_del("egwd0") is False


def test_bad_input_raises_before_writing(ns) -> None:
    from egw.model.errors import ValidationError

    with pytest.raises(ValidationError, match=r"route\.dst"):
        net.Route("10.0.0.0/33", dev="d0")
    with pytest.raises(ValidationError, match=r"route\.dev"):
        net.Route("10.0.0.0/32", dev="x" * 16)
    with Rtnl(ns.name) as rt, pytest.raises(_native.NativeError, match="no such interface"):
        rt.sync_routes([net.Route(ipaddress.ip_network("10.0.0.1/32"), dev="nope0")])
    assert ns.routes("proto", str(net.RTPROT_EGW)) == []
