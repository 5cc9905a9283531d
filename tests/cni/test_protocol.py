"""CNI conformance through the compiled front end and cni-manager's socket (reliability.md §1.8, C1/C2/C6/C12, M1).

The front end binary is exec'd exactly as a runtime would; cni-manager's socket server and plugin run
in-process with the stateful FakeCluster. Everything that needs a pod netns is in test_chain.py.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import Any

import pytest

from egw.cni import conf, manager, plugin
from egw.cni.server import ShimServer
from egw.model import cniproto
from egw.plan import pod
from tests.cni.conftest import Caller, FakeManager
from tests.cni.fakes import Endpoint, FakeCluster

KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
GW = pod.Gateway(ipaddress.ip_address("10.243.0.6"), 6000, KEY)
NS_PATH = "/run/netns/egwcni-does-not-exist"


def prev_result(version: str) -> dict[str, Any]:
    ip: dict[str, Any] = {"address": "10.244.0.20/24", "gateway": "10.244.0.1", "interface": 1}
    if version == "0.4.0":
        ip["version"] = "4"
    return {
        "cniVersion": version,
        "interfaces": [{"name": "veth1", "mac": "aa:bb:cc:dd:ee:ff"}, {"name": "eth0", "sandbox": NS_PATH}],
        "ips": [ip],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["10.245.0.10"]},
    }


def netconf(version: str = "1.0.0", **more: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "egw-test", "type": cniproto.PLUGIN_TYPE, **more}


def cni_env(pod_name: str = "web", namespace: str = "a", cid: str = "c0ffee01") -> dict[str, str]:
    return {
        "containerid": cid,
        "netns": NS_PATH,
        "ifname": "eth0",
        "args": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod_name};"
        f"K8S_POD_INFRA_CONTAINER_ID={cid}",
        "path": "/usr/lib/cni",
    }


def not_annotated(m: FakeManager, key: str = "a/web") -> None:
    m.cluster.pods[key] = plugin.PodInfo("uid-1", {"other": "x"})


def annotated(m: FakeManager, key: str = "a/web", sgc: str = "gw") -> None:
    m.cluster.pods[key] = plugin.PodInfo("uid-1", {cniproto.GATEWAY_ANNOTATION: sgc})


# ---------------------------------------------------------------------------------------- VERSION (C1)


@pytest.mark.parametrize("version", conf.SUPPORTED_VERSIONS)
def test_version_through_manager(fake_manager: FakeManager, version: str) -> None:
    r = fake_manager.call("VERSION", {"cniVersion": version})
    assert r.rc == 0 and r.out == {"cniVersion": version, "supportedVersions": list(conf.SUPPORTED_VERSIONS)}


def test_version_without_manager(shim_bin: Any, sock_dir: Any) -> None:
    r = Caller(shim_bin, sock_dir / "absent.sock")("VERSION", {"cniVersion": "0.4.0"})
    assert r.rc == 0 and r.out == {"cniVersion": "0.4.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}


@pytest.mark.parametrize("version", ["0.3.1", "9.9.9", "banana"])
def test_unsupported_version_is_code_1_on_stdout(fake_manager: FakeManager, version: str) -> None:
    not_annotated(fake_manager)
    r = fake_manager.call("ADD", netconf(version, prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 1 and version in r.out["details"]
    assert fake_manager.cluster.lookups == 0


# ------------------------------------------------------------------------------------ bad input (C12)


@pytest.mark.parametrize(
    ("change", "data", "code"),
    [
        ({"ifname": "a/b"}, None, 4),
        ({"ifname": "x" * 16}, None, 4),
        ({"ifname": ".."}, None, 4),
        ({"containerid": "-x"}, None, 4),
        ({"args": "K8S_POD_NAMESPACE=a"}, None, 4),
        ({"args": "broken"}, None, 4),
        ({"netns": ""}, None, 4),
        ({}, b"{not json", 6),
        ({}, b"", 6),
        ({}, netconf(excludedCIDRs=["10.0.0.0/33"]), 7),
        ({}, netconf(), 7),  # no prevResult: this plugin only runs chained
    ],
)
def test_bad_input(fake_manager: FakeManager, change: dict[str, str], data: Any, code: int) -> None:
    not_annotated(fake_manager)
    body = netconf(prevResult=prev_result("1.0.0")) if data is None else data
    r = fake_manager.call("ADD", body, **{**cni_env(), **change})
    assert r.rc != 0 and r.out is not None, r
    assert r.out["code"] == code and set(r.out) == {"cniVersion", "code", "msg", "details"}
    assert fake_manager.cluster.endpoints == {}


def test_missing_command(fake_manager: FakeManager) -> None:
    r = fake_manager.call("", netconf())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 4


# ---------------------------------------------------------------------------------- pass-through (C2)


@pytest.mark.parametrize("version", conf.SUPPORTED_VERSIONS)
def test_non_annotated_pod_gets_prev_result_unchanged(fake_manager: FakeManager, version: str) -> None:
    not_annotated(fake_manager)
    prev = prev_result(version)
    r = fake_manager.call("ADD", netconf(version, prevResult=prev), **cni_env())
    assert r.rc == 0, r
    assert r.out == prev
    assert fake_manager.cluster.lookups == 1 and fake_manager.cluster.endpoints == {}
    # CHECK on a non-annotated pod succeeds without touching the (absent) netns.
    assert fake_manager.call("CHECK", netconf(version, prevResult=prev), **cni_env()).rc == (
        0 if version != "0.3.1" else 1
    )


def test_check_below_0_4_0_is_code_1(fake_manager: FakeManager) -> None:
    not_annotated(fake_manager)
    r = fake_manager.call("CHECK", netconf("0.3.0", prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 1


# ------------------------------------------------------------------------ cannot tell → try again (11)


def test_add_when_api_unreachable_is_try_again(fake_manager: FakeManager) -> None:
    not_annotated(fake_manager)
    fake_manager.cluster.available = False
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 11


def test_add_when_manager_down_is_try_again(shim_bin: Any, sock_dir: Any) -> None:
    call = Caller(shim_bin, sock_dir / "absent.sock")
    r = call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 11 and r.out["cniVersion"] == "1.0.0"
    assert "cni-manager" in r.out["msg"]


def test_unknown_pod_is_try_again(fake_manager: FakeManager) -> None:
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env(pod_name="ghost"))
    assert r.rc != 0 and r.out is not None and r.out["code"] == 11


# ------------------------------------------------------------------------- gateways: tenancy, readiness


def test_pod_cannot_use_another_namespaces_gateway(fake_manager: FakeManager) -> None:
    fake_manager.cluster.gateways["b/gw"] = GW  # the gateway exists, but in namespace b
    annotated(fake_manager, "a/web", "gw")
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == conf.ERR_GATEWAY_NOT_FOUND
    assert "a/gw" in r.out["details"]
    assert fake_manager.cluster.endpoints == {}


def test_gateway_not_ready_is_try_again(fake_manager: FakeManager) -> None:
    fake_manager.cluster.gateways["a/gw"] = None
    annotated(fake_manager)
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 11
    assert fake_manager.cluster.endpoints == {}


def test_bad_annotation_value(fake_manager: FakeManager) -> None:
    annotated(fake_manager, sgc="../../etc")
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == conf.ERR_INVALID_ANNOTATION


def test_annotated_pod_with_missing_netns_fails_and_leaves_nothing(fake_manager: FakeManager) -> None:
    fake_manager.cluster.gateways["a/gw"] = GW
    annotated(fake_manager)
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == conf.ERR_POD_NETWORK
    assert fake_manager.cluster.endpoints == {}


# ------------------------------------------------------------------------------------------- DEL (C6)


def test_del_is_always_zero(fake_manager: FakeManager) -> None:
    annotated(fake_manager)
    fake_manager.cluster.endpoints["a/web"] = Endpoint("c0ffee01", "gw", "10.244.0.20/32", KEY, "uid-1")
    empty_prev = netconf()  # DEL with an empty prevResult
    for _ in range(2):  # twice in a row, netns path absent
        r = fake_manager.call("DEL", empty_prev, **cni_env())
        assert (r.rc, r.raw) == (0, b"")
    assert fake_manager.cluster.endpoints == {}
    # No CNI_NETNS at all, and no pod identity.
    r = fake_manager.call("DEL", empty_prev, **{**cni_env(), "netns": "", "args": ""})
    assert (r.rc, r.raw) == (0, b"")
    # API server unreachable.
    fake_manager.cluster.available = False
    assert fake_manager.call("DEL", empty_prev, **cni_env()).rc == 0


def test_stale_del_keeps_the_new_sandboxes_endpoint(fake_manager: FakeManager) -> None:
    annotated(fake_manager)
    fake_manager.cluster.endpoints["a/web"] = Endpoint("new-sandbox", "gw", "10.244.0.20/32", KEY, "uid-1")
    assert fake_manager.call("DEL", netconf(), **cni_env(cid="old-sandbox")).rc == 0
    assert fake_manager.cluster.endpoints["a/web"].container_id == "new-sandbox"


def test_del_with_manager_down_exits_zero(shim_bin: Any, sock_dir: Any) -> None:
    r = Caller(shim_bin, sock_dir / "absent.sock")("DEL", netconf(), **cni_env())
    assert (r.rc, r.raw) == (0, b"")
    assert "unavailable" in r.err


def test_del_with_manager_hanging_exits_zero_within_its_deadline(shim_bin: Any, sock_dir: Any) -> None:
    release = threading.Event()

    def hang(req: cniproto.Request) -> cniproto.Response:
        release.wait(60)
        return cniproto.Response(1, b"late\n")

    server = ShimServer(sock_dir / "run" / "cni.sock", hang).start()
    try:
        call = Caller(shim_bin, server.path)
        r = call("DEL", netconf(), env={"EGW_CNI_TIMEOUT_MS": "300"}, timeout=30, **cni_env())
        assert (r.rc, r.raw) == (0, b"") and "timed out" in r.err
        r = call("ADD", netconf(prevResult=prev_result("1.0.0")), env={"EGW_CNI_TIMEOUT_MS": "300"}, **cni_env())
        assert r.rc != 0 and r.out is not None and r.out["code"] == 11
    finally:
        release.set()
        server.stop()


# ------------------------------------------------------------------------------------- GC and STATUS


def test_gc_removes_only_unlisted_attachments(fake_manager: FakeManager) -> None:
    ep = Endpoint
    fake_manager.cluster.endpoints.update(
        {
            "a/keep": ep("c-keep", "gw", "10.244.0.21/32", KEY, "u1"),
            "a/drop": ep("c-drop", "gw", "10.244.0.22/32", KEY, "u2"),
        }
    )
    body = netconf("1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "c-keep", "ifname": "eth0"}]})
    r = fake_manager.call("GC", body, path="/usr/lib/cni")
    assert (r.rc, r.raw) == (0, b"")
    assert set(fake_manager.cluster.endpoints) == {"a/keep"}
    r = fake_manager.call("GC", netconf("1.0.0"), path="/usr/lib/cni")
    assert r.rc != 0 and r.out is not None and r.out["code"] == 1


def test_status(fake_manager: FakeManager, shim_bin: Any, sock_dir: Any) -> None:
    assert fake_manager.call("STATUS", netconf("1.1.0")).rc == 0
    fake_manager.cluster.available = False
    r = fake_manager.call("STATUS", netconf("1.1.0"))
    assert r.rc != 0 and r.out is not None and r.out["code"] == 50
    r = Caller(shim_bin, sock_dir / "absent.sock")("STATUS", netconf("1.1.0"))
    assert r.rc != 0 and r.out is not None and r.out["code"] == 50


# --------------------------------------------------------------------------------- socket security (M1)


def test_socket_is_root_only(fake_manager: FakeManager) -> None:
    path = fake_manager.server.path
    assert oct(path.stat().st_mode & 0o777) == "0o600" and path.stat().st_uid == 0
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    not_annotated(fake_manager)
    r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), user=65534, **cni_env())
    assert r.rc != 0 and r.out is not None and r.out["code"] == 11 and "Permission denied" in r.out["details"]
    assert fake_manager.cluster.lookups == 0


def test_peer_credentials_are_checked(shim_bin: Any, sock_dir: Any) -> None:
    # Open the file permissions on purpose: SO_PEERCRED must still refuse a non-root caller.
    cluster = FakeCluster()
    cluster.pods["a/web"] = plugin.PodInfo("u", {})
    server = ShimServer(sock_dir / "run" / "cni.sock", manager.Handler(plugin.Plugin(cluster)), socket_mode=0o666)
    server.start()
    try:
        os.chmod(sock_dir, 0o755)  # noqa: S103 - on purpose: only SO_PEERCRED may refuse here
        os.chmod(server.path.parent, 0o755)  # noqa: S103
        call = Caller(shim_bin, server.path)
        r = call("ADD", netconf(prevResult=prev_result("1.0.0")), user=65534, **cni_env())
        assert r.rc != 0 and r.out is not None and r.out["code"] == 11
        assert server.rejected == 1 and cluster.lookups == 0
        assert call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env()).rc == 0  # root still served
    finally:
        server.stop()


def test_garbage_on_the_socket_is_dropped(fake_manager: FakeManager) -> None:
    for junk in (b"GET / HTTP/1.1\r\n\r\n", cniproto.MAGIC + b"CNI_COMMAND=ADD", b""):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(fake_manager.server.path))
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            assert s.recv(100) == b""
    not_annotated(fake_manager)
    assert fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env()).rc == 0


def test_concurrent_pass_through(fake_manager: FakeManager) -> None:
    for i in range(20):
        not_annotated(fake_manager, f"a/p{i}")
    results: list[int] = []

    def one(i: int) -> None:
        r = fake_manager.call("ADD", netconf(prevResult=prev_result("1.0.0")), **cni_env(f"p{i}", cid=f"c{i}"))
        results.append(r.rc if r.out == prev_result("1.0.0") else -1)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [0] * 20
