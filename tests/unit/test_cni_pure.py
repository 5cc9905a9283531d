"""Pure parts of the pod side: wire framing, conf/CNI_ARGS/prevResult parsing, skel dispatch, pod plan."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from egw.cni import conf, conflist, skel
from egw.cni.conf import CniError
from egw.model import cniproto, crds
from egw.plan import pod

pytestmark = pytest.mark.unit

KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

# ----------------------------------------------------------------------------------------- framing


def test_request_roundtrip_forwards_only_cni_keys() -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_ARGS": "A=b;C=d", "HOME": "/root", "CNI_NETNS": "/run/netns/x"}
    data = cniproto.encode_request(env, b'{"x": 1}')
    req = cniproto.decode_request(data)
    assert req.env == {"CNI_COMMAND": "ADD", "CNI_NETNS": "/run/netns/x", "CNI_ARGS": "A=b;C=d"}
    assert req.stdin == b'{"x": 1}'


@pytest.mark.parametrize(
    "data",
    [b"", b"nope", cniproto.MAGIC + b"CNI_COMMAND=ADD", cniproto.MAGIC + b"novalue\0\0", cniproto.MAGIC + b"=x\0\0"],
)
def test_bad_requests_are_rejected(data: bytes) -> None:
    with pytest.raises(cniproto.ProtocolError):
        cniproto.decode_request(data)


def test_oversized_request_is_rejected() -> None:
    with pytest.raises(cniproto.ProtocolError, match="exceeds"):
        cniproto.decode_request(cniproto.MAGIC + b"\0" + b"x" * cniproto.MAX_REQUEST)
    with pytest.raises(cniproto.ProtocolError, match="exceeds"):
        cniproto.encode_request({}, b"x" * cniproto.MAX_REQUEST)


def test_response_roundtrip_and_garbage() -> None:
    resp = cniproto.decode_response(cniproto.encode_response(7, b'{"code":7}\n'))
    assert (resp.exit_code, resp.stdout) == (7, b'{"code":7}\n')
    for bad in (b"", cniproto.MAGIC + b"x\n", cniproto.MAGIC + b"256\n", cniproto.MAGIC + b"1"):
        with pytest.raises(cniproto.ProtocolError):
            cniproto.decode_response(bad)
    with pytest.raises(cniproto.ProtocolError):
        cniproto.encode_response(300, b"")


# -------------------------------------------------------------------------------------------- conf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
            {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": "p"},
        ),
        ("A=;B=c=d", {"A": "", "B": "c=d"}),
    ],
)
def test_cni_args(text: str, expected: dict[str, str]) -> None:
    assert conf.parse_cni_args(text) == expected


@pytest.mark.parametrize("text", ["justakey", "=v", "A=1;B"])
def test_cni_args_malformed(text: str) -> None:
    with pytest.raises(CniError) as exc:
        conf.parse_cni_args(text)
    assert exc.value.code == conf.ERR_INVALID_ENV


def test_pod_ref_validation() -> None:
    assert conf.pod_ref({"K8S_POD_NAMESPACE": "a", "K8S_POD_NAME": "b.c", "K8S_POD_UID": "u"}).key == "a/b.c"
    for args in (
        {},
        {"K8S_POD_NAMESPACE": "a"},
        {"K8S_POD_NAMESPACE": "A_b", "K8S_POD_NAME": "x"},
        {"K8S_POD_NAMESPACE": "a", "K8S_POD_NAME": "x/../y"},
    ):
        with pytest.raises(CniError) as exc:
            conf.pod_ref(args)
        assert exc.value.code == conf.ERR_INVALID_ENV


@pytest.mark.parametrize("name", ["", "a/b", "x" * 16, ".", "..", "a b", "a:b"])
def test_bad_ifnames(name: str) -> None:
    with pytest.raises(CniError) as exc:
        conf.validate_ifname(name)
    assert exc.value.code == conf.ERR_INVALID_ENV


@pytest.mark.parametrize("cid", ["", "-x", "a/b", "a b", "../x"])
def test_bad_container_ids(cid: str) -> None:
    with pytest.raises(CniError) as exc:
        conf.validate_container_id(cid)
    assert exc.value.code == conf.ERR_INVALID_ENV


def test_netconf_versions_and_fields() -> None:
    nc = conf.parse_netconf(
        {"cniVersion": "1.0.0", "name": "n", "type": "t", "excludedCIDRs": ["10.0.0.0/8 ", "10.0.0.1/8"]}
    )
    assert nc.excluded_cidrs == (ipaddress.ip_network("10.0.0.0/8"),)
    for version in ("0.3.1", "9.9.9", None):
        raw: dict[str, Any] = {"name": "n"} if version is None else {"cniVersion": version}
        with pytest.raises(CniError) as exc:
            conf.parse_netconf(raw)
        assert exc.value.code == conf.ERR_INCOMPATIBLE_VERSION
    for bad in (
        {"excludedCIDRs": "10.0.0.0/8"},
        {"excludedCIDRs": ["10.0.0.1"]},
        {"excludedCIDRs": ["0.0.0.0/0"]},
        {"prevResult": []},
        {"name": 3},
        {"cni.dev/valid-attachments": [{"containerID": 1}]},
    ):
        with pytest.raises(CniError) as exc:
            conf.parse_netconf({"cniVersion": "1.1.0", **bad})
        assert exc.value.code == conf.ERR_INVALID_CONFIG
        assert str(next(iter(bad))) in exc.value.msg


def test_decode_errors() -> None:
    for data in (b"{", b"[]", b"\xff"):
        with pytest.raises(CniError) as exc:
            conf.decode_json(data)
        assert exc.value.code == conf.ERR_DECODE


PREV = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "veth1", "mac": "aa"}, {"name": "eth0", "sandbox": "/run/netns/p"}],
    "ips": [
        {"address": "10.1.0.9/24", "interface": 0},
        {"address": "10.244.0.20/24", "gateway": "10.244.0.1", "interface": 1},
    ],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {},
}


def test_pod_addresses_prefers_the_sandbox_interface() -> None:
    got = conf.pod_addresses(PREV, "eth0", "/run/netns/p")
    assert got.ipv4 == ipaddress.IPv4Interface("10.244.0.20/24")
    assert conf.pod_addresses({"ips": [{"address": "10.3.0.2/16"}]}, "eth0", "/x").ipv4.ip == ipaddress.ip_address(
        "10.3.0.2"
    )
    for prev in (None, {}, {"ips": [{"address": "fd00::1/64"}]}, {"ips": [{"address": "nope"}]}):
        with pytest.raises(CniError) as exc:
            conf.pod_addresses(prev, "eth0", "/x")
        assert exc.value.code == conf.ERR_INVALID_CONFIG


def test_result_helpers_keep_prev_result() -> None:
    out = conf.passthrough(PREV, "1.0.0")
    assert out == PREV
    added = conf.with_interface(PREV, "1.0.0", "wg0", "/run/netns/p")
    assert added["ips"] == PREV["ips"] and added["routes"] == PREV["routes"]
    assert added["interfaces"][-1] == {"name": "wg0", "sandbox": "/run/netns/p"}
    assert conf.with_interface(added, "1.0.0", "wg0", "/run/netns/p") == added


# -------------------------------------------------------------------------------------------- skel


class Recorder:
    def __init__(self, fail: CniError | Exception | None = None) -> None:
        self.calls: list[skel.CmdArgs] = []
        self.fail = fail

    def _do(self, cmd: skel.CmdArgs) -> None:
        self.calls.append(cmd)
        if self.fail:
            raise self.fail

    def add(self, cmd: skel.CmdArgs) -> dict[str, Any]:
        self._do(cmd)
        return conf.passthrough(cmd.conf.prev_result, cmd.conf.cni_version)

    def delete(self, cmd: skel.CmdArgs) -> None:
        self._do(cmd)

    check = gc = status = delete


ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/p",
    "CNI_IFNAME": "eth0",
    "CNI_ARGS": "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b",
    "CNI_PATH": "/usr/lib/cni",
}


def stdin(version: str = "1.0.0", **more: Any) -> bytes:
    return json.dumps({"cniVersion": version, "name": "net", "type": cniproto.PLUGIN_TYPE, **more}).encode()


def run(env: dict[str, str], data: bytes, plugin: Recorder | None = None) -> tuple[int, dict[str, Any] | None]:
    code, out = skel.run(env, data, plugin or Recorder())
    return code, (json.loads(out) if out else None)


def test_version_verb() -> None:
    code, out = run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert code == 0 and out == {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}
    assert run({"CNI_COMMAND": "VERSION"}, b"")[1]["cniVersion"] == "1.1.0"  # type: ignore[index]


@pytest.mark.parametrize("version", conf.SUPPORTED_VERSIONS)
def test_add_dispatch_prints_result_at_config_version(version: str) -> None:
    rec = Recorder()
    code, out = run(ENV, stdin(version, prevResult=PREV), rec)
    assert code == 0 and out is not None and out["cniVersion"] == version
    assert rec.calls[0].args["K8S_POD_NAME"] == "b" and rec.calls[0].netns == "/run/netns/p"


@pytest.mark.parametrize(
    ("env_change", "data", "code"),
    [
        ({"CNI_COMMAND": ""}, stdin(), 4),
        ({"CNI_COMMAND": "FROB"}, stdin(), 4),
        ({"CNI_NETNS": ""}, stdin(), 4),
        ({"CNI_IFNAME": "a/b"}, stdin(), 4),
        ({"CNI_IFNAME": "x" * 16}, stdin(), 4),
        ({"CNI_IFNAME": ".."}, stdin(), 4),
        ({"CNI_CONTAINERID": "-x"}, stdin(), 4),
        ({"CNI_ARGS": "K8S_POD_NAME"}, stdin(), 4),
        ({}, b"{not json", 6),
        ({}, stdin("9.9.9"), 1),
        ({}, stdin("0.3.1"), 1),
        ({}, stdin(excludedCIDRs=["bogus"]), 7),
        ({"CNI_COMMAND": "CHECK"}, stdin("0.3.1"), 1),
        ({"CNI_COMMAND": "GC"}, stdin("1.0.0"), 1),
        ({"CNI_COMMAND": "STATUS"}, stdin("0.4.0"), 1),
    ],
)
def test_bad_input_gives_spec_error_and_no_call(env_change: dict[str, str], data: bytes, code: int) -> None:
    rec = Recorder()
    rc, out = run({**ENV, **env_change}, data, rec)
    assert rc == 1 and out is not None
    assert out["code"] == code and out["msg"]
    assert set(out) == {"cniVersion", "code", "msg", "details"}
    assert rec.calls == []


def test_plugin_errors_and_crashes() -> None:
    rc, out = run(ENV, stdin(), Recorder(CniError(11, "try again later")))
    assert rc == 1 and out == {"cniVersion": "1.0.0", "code": 11, "msg": "try again later", "details": ""}
    rc, out = run(ENV, stdin(), Recorder(RuntimeError("secret-ish detail")))
    assert rc == 1 and out is not None and out["code"] == conf.ERR_POD_NETWORK and "secret" not in json.dumps(out)
    # DEL never fails on an internal error.
    rc, out = run({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}, stdin(), Recorder(RuntimeError("boom")))
    assert (rc, out) == (0, None)


def test_del_needs_no_netns() -> None:
    rec = Recorder()
    assert run({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}, stdin()) == (0, None)
    assert run({**ENV, "CNI_COMMAND": "DEL"}, stdin(), rec) == (0, None) and rec.calls[0].command == "DEL"


def test_gc_gets_valid_attachments() -> None:
    rec = Recorder()
    data = stdin("1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]})
    assert run({"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, data, rec) == (0, None)
    assert rec.calls[0].conf.valid_attachments == (conf.Attachment("c1", "eth0"),)


# -------------------------------------------------------------------------------------------- plan


GW = pod.Gateway(ipaddress.ip_address("10.243.0.6"), 6000, KEY)
LL = ipaddress.IPv6Interface("fe80::b4ee:c6ff:fe23:99/64")
NET = ipaddress.IPv4Network


def ptp_routes() -> tuple[pod.Route, ...]:
    gw = ipaddress.IPv4Address("10.244.0.1")
    return (
        pod.Route(pod.MAIN_TABLE, NET("0.0.0.0/0"), "eth0", gw),
        pod.Route(pod.MAIN_TABLE, NET("10.244.0.0/24"), "eth0", gw),
        pod.Route(pod.MAIN_TABLE, NET("10.244.0.1/32"), "eth0", None, "link"),
    )


def apply(routes: tuple[pod.Route, ...], plan: pod.PodPlan) -> tuple[pod.Route, ...]:
    """What the kernel would hold after applying the plan's route diff."""
    keep = {r.key: r for r in routes if r not in plan.remove_routes}
    keep.update({r.key: r for r in plan.add_routes})
    return tuple(sorted(keep.values()))


def test_seed_pod_view() -> None:
    ns = pod.PodNetns("eth0", LL, ptp_routes())
    plan = pod.plan_pod(ipaddress.IPv4Interface("10.244.0.20/24"), ns, GW)
    main = [str(r) for r in plan.routes if r.table == pod.MAIN_TABLE]
    assert sorted(main) == sorted(["default via inet6 fe80::1 dev wg0", "10.244.0.1 dev eth0 scope link"])
    assert [str(r) for r in plan.routes if r.table == pod.ROUTE_TABLE] == ["default via 10.244.0.1 dev eth0 table 8738"]
    # The old default is replaced (same key), the subnet route removed.
    assert [str(r) for r in plan.remove_routes] == ["10.244.0.0/24 via 10.244.0.1 dev eth0"]
    assert "default via inet6 fe80::1 dev wg0" in [str(r) for r in plan.add_routes]
    assert str(plan.rule) == "32765: from all fwmark 0x2222 lookup 8738"
    assert plan.mangle_rules == (
        "-A PREROUTING -i eth0 -j MARK --set-xmark 0x2222/0xffffffff",
        "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        "-A OUTPUT -m connmark --mark 0x2222 -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
    )
    assert (plan.wg_address, plan.mtu, plan.peer_endpoint) == (LL, 1420, "10.243.0.6:6000")
    assert plan.allowed_ips == ("0.0.0.0/0", "::/0") and plan.endpoint_allowed_ip == "10.244.0.20/32"
    assert ("net/ipv4/conf/eth0/rp_filter", "2") in plan.sysctls


def test_retried_add_is_a_no_op() -> None:
    ns = pod.PodNetns("eth0", LL, ptp_routes())
    ip = ipaddress.IPv4Interface("10.244.0.20/24")
    excl = (NET("10.244.0.0/16"), ipaddress.ip_network("fd00::/64"))
    first = pod.plan_pod(ip, ns, GW, excl)
    after = apply(ns.routes, first)
    second = pod.plan_pod(ip, pod.PodNetns("eth0", LL, after), GW, excl)
    assert second.routes == first.routes
    assert (second.add_routes, second.remove_routes) == ((), ())
    assert pod.check_plan(second, after, [second.rule], second.mangle_rules) == []


def test_exception_cidrs_static_mode() -> None:
    gw = pod.Gateway(GW.endpoint, GW.port, KEY, (NET("10.245.0.0/16"), NET("10.244.0.0/16")))
    plan = pod.plan_pod(
        ipaddress.IPv4Interface("10.244.0.20/24"),
        pod.PodNetns("eth0", LL, ptp_routes()),
        gw,
        (NET("169.254.169.254/32"), NET("10.244.0.0/16"), ipaddress.ip_network("fd00::/8")),
    )
    excl = [str(r) for r in plan.routes if r.proto == "static"]
    assert excl == [
        "10.245.0.0/16 via 10.244.0.1 dev eth0 proto static",
        "10.244.0.0/16 via 10.244.0.1 dev eth0 proto static",
        "169.254.169.254 via 10.244.0.1 dev eth0 proto static",
    ]


def test_azure_networking_mode_keeps_eth0_and_tunnels_only_excludes() -> None:
    gw = pod.Gateway(GW.endpoint, GW.port, KEY, (NET("203.0.113.0/24"),), crds.DEFAULT_ROUTE_AZURE)
    plan = pod.plan_pod(
        ipaddress.IPv4Interface("10.244.0.20/24"), pod.PodNetns("eth0", LL, ptp_routes()), gw, (NET("10.0.0.0/8"),)
    )
    assert plan.remove_routes == ()
    main = [str(r) for r in plan.routes if r.table == pod.MAIN_TABLE]
    assert main == ["203.0.113.0/24 via inet6 fe80::1 dev wg0 proto static"]


def test_plan_errors() -> None:
    ip = ipaddress.IPv4Interface("10.244.0.20/24")
    with pytest.raises(pod.PlanError, match="link-local"):
        pod.plan_pod(ip, pod.PodNetns("eth0", None, ptp_routes()), GW)
    with pytest.raises(pod.PlanError, match="default route"):
        pod.plan_pod(ip, pod.PodNetns("eth0", LL, ptp_routes()[1:]), GW)


def test_check_plan_reports_drift() -> None:
    ns = pod.PodNetns("eth0", LL, ptp_routes())
    plan = pod.plan_pod(ipaddress.IPv4Interface("10.244.0.20/24"), ns, GW)
    problems = pod.check_plan(plan, ns.routes, [], plan.mangle_rules[:1])
    assert any("default via inet6 fe80::1 dev wg0" in p for p in problems)
    assert any("ip rule missing" in p for p in problems)
    assert sum("mangle rule missing" in p for p in problems) == 2


def test_ipv6_endpoint_text() -> None:
    assert pod.Gateway(ipaddress.ip_address("fd00::6"), 6000, KEY).endpoint_text == "[fd00::6]:6000"


# ---------------------------------------------------------------------------------------- conflist


def _src(name: str, doc: Any) -> conflist.Source:
    return conflist.Source(name, json.dumps(doc))


def test_conflist_inserts_after_primary_and_keeps_unknown_keys() -> None:
    main = {
        "cniVersion": "1.0.0",
        "name": "azure",
        "x-extra": {"k": 1},
        "plugins": [
            {"type": "azure-vnet", "mode": "transparent"},
            {"type": "portmap"},
            {"type": "kube-egress-gateway-cni", "old": True},
        ],
    }
    out = json.loads(conflist.render(_src("10-azure.conflist", main), ["10.244.0.0/16"], "/run/x.sock"))
    assert [p["type"] for p in out["plugins"]] == ["azure-vnet", "kube-egress-gateway-cni", "portmap"]
    assert out["plugins"][1] == {
        "type": "kube-egress-gateway-cni",
        "excludedCIDRs": ["10.244.0.0/16"],
        "socketPath": "/run/x.sock",
    }
    assert out["x-extra"] == {"k": 1} and out["name"] == "azure" and out["plugins"][0]["mode"] == "transparent"


def test_conflist_from_single_conf() -> None:
    out = json.loads(
        conflist.render(
            _src(
                "10-bridge.conf",
                {"cniVersion": "0.4.0", "name": "br", "type": "bridge", "ipam": {"type": "host-local"}},
            ),
            [],
            "/s",
        )
    )
    assert out["name"] == "br" and out["cniVersion"] == "0.4.0"
    assert out["plugins"][0] == {"type": "bridge", "ipam": {"type": "host-local"}}


@pytest.mark.parametrize(
    ("name", "doc", "match"),
    [
        ("a.conflist", [], "object"),
        ("a.conflist", {"plugins": []}, "non-empty"),
        ("a.conflist", {"plugins": [{"x": 1}]}, "type"),
        ("a.conf", {"type": "bridge"}, "name"),
        ("a.conflist", {"plugins": [{"type": "kube-egress-gateway-cni"}]}, "no plugin other"),
    ],
)
def test_conflist_rejects_unusable_main_configs(name: str, doc: Any, match: str) -> None:
    with pytest.raises(conflist.ConfError, match=match):
        conflist.render(_src(name, doc), [], "/s")


def test_conflist_sync_is_level_triggered(tmp_path: Any) -> None:
    assert conflist.sync(tmp_path, [], "/s") == "waiting"
    (tmp_path / "10-a.conflist").write_text(json.dumps({"name": "a", "plugins": [{"type": "ptp"}]}))
    (tmp_path / "20-b.conflist").write_text(json.dumps({"name": "b", "plugins": [{"type": "bridge"}]}))
    assert conflist.sync(tmp_path, [], "/s") == "written"
    ours = tmp_path / cniproto.CONFLIST_NAME
    assert json.loads(ours.read_text())["name"] == "a" and oct(ours.stat().st_mode & 0o777) == "0o644"
    assert conflist.sync(tmp_path, [], "/s") == "unchanged"
    ours.unlink()
    assert conflist.sync(tmp_path, [], "/s") == "written"  # deletion is repaired
    (tmp_path / "10-a.conflist").unlink()
    assert conflist.sync(tmp_path, [], "/s") == "written" and json.loads(ours.read_text())["name"] == "b"
    (tmp_path / "20-b.conflist").write_text("{broken")
    assert conflist.sync(tmp_path, [], "/s") == "error"
    (tmp_path / "20-b.conflist").unlink()
    assert conflist.sync(tmp_path, [], "/s") == "removed" and not ours.exists()
