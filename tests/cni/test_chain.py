"""Real chained CNI: Debian's ptp + host-local first, kube-egress-gateway-cni second, cni-manager against the real
kube-apiserver, pods in throwaway netns (reliability.md §1.8 cases 2-11, C2-C10; seed "Pod Validation").

cni-manager runs as its own process for a test "node" netns (tests/cni/harness.py), the runtime stand-in
(tests/cni/runtime.py) execs the chain in that netns, and the checks read back the pod netns with
iproute2/iptables-save and the WireGuard device with ``wg``, as the troubleshooting guide does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from egw.cni import podnet
from egw.k8s import client as k8s
from egw.model import cniproto
from tests.cni.harness import GW_PUB, NODE, SEED_MANGLE, Chain, link_local, pod_view, start_chain, wait_for, wg_dump
from tests.cni.runtime import CniFailure, Sandbox

if importlib.util.find_spec("tests.fixtures.apiserver") is None:  # the control-plane fixture lands separately
    pytest.skip("tests/fixtures/apiserver.py is not on this branch yet", allow_module_level=True)

pytestmark = [pytest.mark.netns, pytest.mark.apiserver]


@pytest.fixture
def chain(
    control_plane: Any, k8s_namespace: str, netns_factory: Any, shim_bin: Path, sock_dir: Path, tmp_path: Path
) -> Chain:
    return start_chain(control_plane, k8s_namespace, netns_factory("node"), netns_factory, shim_bin, sock_dir, tmp_path)


# ------------------------------------------------------------------------------------------------ tests


def test_annotated_pod_gets_the_seed_pod_view(chain: Chain) -> None:
    chain.sgc(excludeCidrs=["10.20.0.0/16"])
    sb = chain.pod("web")
    result = chain.runtime.add(sb)

    # The runtime still sees the main plugin's IP; wg0 is listed as an extra sandbox interface.
    assert [i["address"] for i in result["ips"]] == ["10.244.0.2/24"]
    assert {"name": "wg0", "sandbox": sb.netns} in result["interfaces"]

    view = pod_view(sb)
    wg0, eth0 = view["links"]["wg0"], view["links"]["eth0"]
    assert {"POINTOPOINT", "NOARP", "UP", "LOWER_UP"} <= set(wg0["flags"]) and wg0["mtu"] == 1420
    assert [a["local"] for a in wg0["addr_info"]] == [link_local(eth0)]  # same as eth0 inet6
    assert view["routes"] == sorted(
        [
            "default via inet6 fe80::1 dev wg0",
            "10.244.0.1 dev eth0 scope link",
            "10.20.0.0/16 via 10.244.0.1 dev eth0 proto static",
            "10.244.0.0/16 via 10.244.0.1 dev eth0 proto static",
            "10.245.0.0/16 via 10.244.0.1 dev eth0 proto static",
            "169.254.169.254 via 10.244.0.1 dev eth0 proto static",
        ]
    )
    assert "32765:\tfrom all fwmark 0x2222 lookup 8738" in view["rules"]
    assert view["mangle"] == SEED_MANGLE
    assert view["rp_filter"] == ["2", "2"]
    table = subprocess.run(
        ["ip", "-n", os.path.basename(sb.netns), "route", "show", "table", "8738"], capture_output=True, text=True
    ).stdout.strip()
    assert table == "default via 10.244.0.1 dev eth0"

    dump = wg_dump(sb)
    iface, peers = dump[0], dump[1:]
    assert iface[0] == "(hidden)" or len(iface[0]) == 44  # private key never printed by our tooling
    assert int(iface[2]) > 0  # random listen port, socket in the node netns
    assert [(p[0], p[2], p[3]) for p in peers] == [(GW_PUB, "10.243.0.6:6000", "0.0.0.0/0,::/0")]

    pe = chain.endpoint("web")
    assert pe is not None
    assert pe["spec"] == {
        "podIpAddress": "10.244.0.2/32",
        "podPublicKey": iface[1],
        "staticGatewayConfiguration": "gw",
    }
    owner = pe["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Pod", "web", sb.uid, True)
    assert pe["metadata"]["annotations"][cniproto.CONTAINER_ID_ANNOTATION] == sb.container_id
    # The private key is nowhere in cni-manager's log.
    assert iface[0] not in chain.log.read_text()

    # CHECK right after ADD succeeds. Only ours: Debian ptp's CHECK insists on its default route via eth0,
    # which this plugin moves to wg0 by design (runtimes that run CHECK need disableCheck or a tolerant main
    # plugin; the kubelet does not call CHECK).
    chain.runtime.check(sb, only=cniproto.PLUGIN_TYPE)

    # ADD retried in the same netns is idempotent (same view, PodEndpoint refreshed with the new key).
    assert chain.runtime.rerun(sb, cniproto.PLUGIN_TYPE)["ips"] == result["ips"]
    again = pod_view(sb)
    assert again["routes"] == view["routes"] and again["mangle"] == SEED_MANGLE
    assert again["rules"].count("fwmark 0x2222") == 1
    assert chain.endpoint("web")["spec"]["podPublicKey"] == wg_dump(sb)[0][1]  # type: ignore[index]

    assert chain.runtime.delete(sb) == []
    assert "wg0" not in pod_view(sb)["links"] if os.path.exists(sb.netns) else True
    assert chain.endpoint("web") is None
    wait_for(
        "wireguard-go to exit",
        lambda: not os.path.exists(f"{podnet.UAPI_DIR}/{podnet.temp_link_name(sb.container_id)}.sock"),
    )


def test_non_annotated_pod_is_passed_through(chain: Chain) -> None:
    sb = chain.pod("plain", sgc=None)
    result = chain.runtime.add(sb)
    assert [i["address"] for i in result["ips"]] == ["10.244.0.2/24"]
    assert all(i["name"] != "wg0" for i in result["interfaces"])
    view = pod_view(sb)
    assert "wg0" not in view["links"] and view["mangle"] == []
    assert "default via 10.244.0.1 dev eth0" in view["routes"]
    assert chain.endpoint("plain") is None
    chain.runtime.check(sb)  # the whole chain: nothing moved
    assert chain.runtime.delete(sb) == []


def test_azure_networking_mode_keeps_eth0_routes(chain: Chain) -> None:
    chain.sgc(defaultRoute="azureNetworking", excludeCidrs=["203.0.113.0/24"])
    sb = chain.pod("az")
    chain.runtime.add(sb)
    routes = pod_view(sb)["routes"]
    assert "default via 10.244.0.1 dev eth0" in routes
    assert "203.0.113.0/24 via inet6 fe80::1 dev wg0 proto static" in routes
    assert not any("10.245.0.0/16" in r for r in routes)  # node-level exceptions are not tunnelled
    assert chain.runtime.delete(sb) == []


def test_other_namespaces_gateway_is_refused_and_nothing_is_left(chain: Chain, k8s_namespace: str) -> None:
    other = f"{k8s_namespace}-b"
    chain.api.create(k8s.NAMESPACES, {"metadata": {"name": other}})
    try:
        chain.sgc("gw", namespace=other)
        sb = chain.pod("thief", sgc="gw")
        with pytest.raises(CniFailure) as exc:
            chain.runtime.add(sb)
        assert exc.value.plugin == cniproto.PLUGIN_TYPE and exc.value.code == 100
        assert "wg0" not in pod_view(sb)["links"] and chain.endpoint("thief") is None
        assert chain.runtime.delete(sb) == []
    finally:
        chain.api.delete(k8s.NAMESPACES, other)


def test_gateway_not_ready_is_try_again_later(chain: Chain) -> None:
    chain.sgc(ready=False)
    sb = chain.pod("early")
    with pytest.raises(CniFailure) as exc:
        chain.runtime.add(sb)
    assert exc.value.code == 11
    assert "wg0" not in pod_view(sb)["links"] and chain.endpoint("early") is None
    assert chain.runtime.delete(sb) == []


@pytest.mark.parametrize("step", ["link-created", "link-moved", "published", "routes", "iptables"])
def test_interrupted_add_is_cleaned_by_del_and_retried(chain: Chain, step: str) -> None:
    chain.sgc()
    sb = chain.pod(f"crash-{step}")
    with pytest.raises(CniFailure) as exc:
        chain.runtime.add(sb, EGW_CNI_TEST_FAULT=step)
    assert exc.value.code == 11  # the front end saw no answer, like a killed plugin
    assert chain.runtime.delete(sb) == []
    temp = podnet.temp_link_name(sb.container_id)
    assert temp not in chain.node.ip("-o", "link")
    assert not os.path.exists(f"{podnet.UAPI_DIR}/{temp}.sock") or not podnet._pids_of(temp)
    assert chain.endpoint(sb.name) is None
    # The runtime retries the sandbox: a fresh ADD after the DEL works.
    chain.runtime.add(sb)
    assert "wg0" in pod_view(sb)["links"] and chain.endpoint(sb.name) is not None
    assert chain.runtime.delete(sb) == []


def test_del_edge_cases_all_exit_zero(chain: Chain) -> None:
    chain.sgc()
    sb = chain.pod("edge")
    chain.runtime.add(sb)
    assert chain.runtime.delete(sb) == [] and chain.runtime.delete(sb) == []  # twice
    chain.runtime.add(sb)
    subprocess.run(["ip", "netns", "del", os.path.basename(sb.netns)], check=True)  # netns gone first
    # Our plugin exits 0; Debian's ptp may complain about the missing netns, which is not ours to judge.
    assert all(f.plugin == "ptp" for f in chain.runtime.delete(sb))
    assert chain.endpoint("edge") is None


def test_del_while_manager_stopped_or_hanging(chain: Chain) -> None:
    chain.sgc()
    sb = chain.pod("lonely")
    chain.runtime.add(sb)
    chain.runtime.env["EGW_CNI_TIMEOUT_MS"] = "500"
    os.kill(chain.proc.pid, signal.SIGSTOP)  # hanging: accepts connections, never answers
    try:
        failures = chain.runtime.delete(sb)
    finally:
        os.kill(chain.proc.pid, signal.SIGCONT)
    assert [f.plugin for f in failures] == []
    assert "wg0" not in pod_view(sb)["links"]  # the front end's own best-effort cleanup


def test_stale_del_keeps_the_new_sandbox(chain: Chain) -> None:
    chain.sgc()
    old = chain.pod("sts-0")
    chain.runtime.add(old)
    new = Sandbox(uuid.uuid4().hex, chain.make_ns("sts-0-b").path, old.namespace, old.name, old.uid)
    assert chain.runtime.delete(old) == []
    chain.runtime.add(new)
    key = chain.endpoint("sts-0")["spec"]["podPublicKey"]  # type: ignore[index]
    # A repeated DEL for the old sandbox arrives late.
    assert chain.runtime.delete(old) == []
    pe = chain.endpoint("sts-0")
    assert pe is not None and pe["spec"]["podPublicKey"] == key
    assert "wg0" in pod_view(new)["links"]
    assert chain.runtime.delete(new) == []


def test_check_detects_broken_pods(chain: Chain) -> None:
    chain.sgc()
    sb = chain.pod("broken")
    chain.runtime.add(sb)
    chain.runtime.check(sb, only=cniproto.PLUGIN_TYPE)
    subprocess.run(["wg", "set", podnet.temp_link_name(sb.container_id), "peer", GW_PUB, "remove"], check=True)
    with pytest.raises(CniFailure) as exc:
        chain.runtime.check(sb, only=cniproto.PLUGIN_TYPE)
    assert exc.value.code == 103 and "peer" in exc.value.error["details"]
    subprocess.run(["ip", "-n", os.path.basename(sb.netns), "link", "del", "wg0"], check=True)
    with pytest.raises(CniFailure) as exc:
        chain.runtime.check(sb, only=cniproto.PLUGIN_TYPE)
    assert exc.value.code == 103 and "wg0" in exc.value.error["details"]
    assert chain.runtime.delete(sb) == []


def test_conflist_is_restored_and_follows_the_main_config(chain: Chain) -> None:
    ours = chain.conf_dir / cniproto.CONFLIST_NAME
    first = json.loads(ours.read_text())
    assert [p["type"] for p in first["plugins"]] == ["ptp", cniproto.PLUGIN_TYPE]
    ours.unlink()
    wait_for("the conflist to come back", ours.exists)
    main = json.loads((chain.conf_dir / "10-ptp.conflist").read_text())
    main["plugins"].append({"type": "portmap", "capabilities": {"portMappings": True}})
    (chain.conf_dir / "10-ptp.conflist").write_text(json.dumps(main))
    wait_for(
        "the conflist to follow the main config",
        lambda: (
            [p["type"] for p in json.loads(ours.read_text())["plugins"]] == ["ptp", cniproto.PLUGIN_TYPE, "portmap"]
        ),
    )


def test_gc_removes_endpoints_of_unlisted_sandboxes(chain: Chain) -> None:
    chain.sgc()
    keep, drop = chain.pod("keep"), chain.pod("drop")
    chain.runtime.add(keep)
    chain.runtime.add(drop)
    net = chain.runtime.network()
    # Only our plugin speaks 1.1.0 (Debian's plugins stop at 1.0.0): GC ours directly.
    ours = next(p for p in net["plugins"] if p["type"] == cniproto.PLUGIN_TYPE)
    conf = {
        **ours,
        "name": net["name"],
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": keep.container_id, "ifname": "eth0"}],
    }
    chain.runtime._exec(cniproto.PLUGIN_TYPE, "GC", None, conf, {})
    assert chain.endpoint("keep") is not None and chain.endpoint("drop") is None
    status = {**ours, "name": net["name"], "cniVersion": "1.1.0"}
    assert chain.runtime._exec(cniproto.PLUGIN_TYPE, "STATUS", None, status, {}) is None
    chain.runtime.delete(keep)
    chain.runtime.delete(drop)


def test_sweep_deletes_endpoints_of_gone_pods(chain: Chain) -> None:
    # A PodEndpoint this node published for a pod that no longer exists, without an ownerReference (so the
    # API server's garbage collector cannot be what removes it): only cni-manager's sweep can.
    labels = {"egressgateway.kubernetes.azure.com/node": NODE}
    for name, node_labels in (("ghost", labels), ("elsewhere", {"egressgateway.kubernetes.azure.com/node": "n2"})):
        body = {
            "metadata": {"name": name, "namespace": chain.namespace, "labels": node_labels},
            "spec": {"staticGatewayConfiguration": "gw", "podIpAddress": "10.244.0.99/32", "podPublicKey": GW_PUB},
        }
        chain.api.create(k8s.POD_ENDPOINTS, body, chain.namespace)
    wait_for("cni-manager's sweep to remove the orphan", lambda: chain.endpoint("ghost") is None, log=chain.log)
    assert chain.endpoint("elsewhere") is not None  # another node's PodEndpoints are not ours to judge


def test_kill_9_of_the_plugin_mid_add_then_del_leaves_nothing(chain: Chain) -> None:
    chain.sgc()
    sb = chain.pod("killed")
    net = chain.runtime.network()
    ptp = next(p for p in net["plugins"] if p["type"] == "ptp")
    prev = chain.runtime._exec("ptp", "ADD", sb, chain.runtime._conf(net, ptp, None), {})
    ours = next(p for p in net["plugins"] if p["type"] == cniproto.PLUGIN_TYPE)
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": sb.container_id,
        "CNI_NETNS": sb.netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": sb.cni_args(),
    }
    shim = subprocess.Popen(
        [str(chain.runtime.bin_dir / cniproto.PLUGIN_TYPE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert shim.stdin is not None
    shim.stdin.write(json.dumps(chain.runtime._conf(net, ours, prev)).encode())
    shim.stdin.close()
    sock = f"{podnet.UAPI_DIR}/{podnet.temp_link_name(sb.container_id)}.sock"
    wait_for("the ADD to be under way (WireGuard device started)", lambda: os.path.exists(sock), log=chain.log)
    shim.kill()
    shim.wait(10)
    # The runtime saw the ADD fail and now DELs the whole chain with what it has (no cached result).
    assert all(f.plugin == "ptp" for f in chain.runtime.delete(sb))
    assert "wg0" not in pod_view(sb)["links"]
    assert chain.endpoint("killed") is None
    assert podnet.temp_link_name(sb.container_id) not in chain.node.ip("-o", "link")
    wait_for("wireguard-go to exit", lambda: not podnet._pids_of(podnet.temp_link_name(sb.container_id)))


def cnitool(chain: Chain, verb: str, sb: Sandbox) -> subprocess.CompletedProcess[str]:
    """The CNI project's own runtime stand-in (built by `make testbin`), run in the node netns."""
    from tests.fixtures.apiserver import find_testbin_dir

    exe = find_testbin_dir() / "cnitool"
    if not exe.exists():
        pytest.skip(f"cnitool missing in {find_testbin_dir()} (make testbin)")
    env = {
        "PATH": os.environ["PATH"],
        "NETCONFPATH": str(chain.conf_dir),
        "CNI_PATH": str(chain.runtime.bin_dir),
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={sb.namespace};K8S_POD_NAME={sb.name};K8S_POD_UID={sb.uid}",
    }
    argv = ["nsenter", f"--net={chain.node.path}", "--", str(exe), verb, chain.runtime.network()["name"], sb.netns]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cnitool_drives_the_chain(chain: Chain) -> None:
    chain.sgc()
    gw_pod, plain = chain.pod("tool-gw"), chain.pod("tool-plain", sgc=None)
    for sb in (gw_pod, plain):
        out = cnitool(chain, "add", sb)
        assert out.returncode == 0, out.stderr + out.stdout
        assert [i["address"] for i in json.loads(out.stdout)["ips"]] == ["10.244.0.2/24", "10.244.0.3/24"][
            sb is plain : (sb is plain) + 1
        ]
    assert "wg0" in pod_view(gw_pod)["links"] and "wg0" not in pod_view(plain)["links"]
    pe = chain.endpoint("tool-gw")
    assert pe is not None and pe["metadata"]["annotations"][cniproto.CONTAINER_ID_ANNOTATION].startswith("cnitool-")
    assert chain.endpoint("tool-plain") is None
    for sb in (gw_pod, plain):
        out = cnitool(chain, "del", sb)
        assert out.returncode == 0, out.stderr + out.stdout
    assert chain.endpoint("tool-gw") is None
    assert "wg0" not in pod_view(gw_pod)["links"]


def test_pod_of_another_node_is_refused(chain: Chain) -> None:
    chain.sgc()
    obj = chain.api.create(
        k8s.PODS,
        {
            "metadata": {
                "name": "elsewhere",
                "namespace": chain.namespace,
                "annotations": {cniproto.GATEWAY_ANNOTATION: "gw"},
            },
            "spec": {"nodeName": "some-other-node", "containers": [{"name": "c", "image": "registry.invalid/pause"}]},
        },
        chain.namespace,
    )
    sb = Sandbox(
        uuid.uuid4().hex, chain.make_ns("elsewhere").path, chain.namespace, "elsewhere", obj["metadata"]["uid"]
    )
    with pytest.raises(CniFailure) as exc:
        chain.runtime.add(sb)
    assert exc.value.plugin == cniproto.PLUGIN_TYPE and exc.value.code == 104
    assert chain.endpoint("elsewhere") is None and "wg0" not in pod_view(sb)["links"]
    assert all(f.plugin == "ptp" for f in chain.runtime.delete(sb))


def test_concurrent_adds_with_shared_id_prefix(chain: Chain) -> None:
    from concurrent.futures import ThreadPoolExecutor

    chain.sgc()
    sandboxes = []
    for i in range(6):
        sb = chain.pod(f"many-{i}")
        sb.container_id = f"deadbeef{i:056x}"  # same first 8 characters, as reliability.md §1.8 case 7 asks
        sandboxes.append(sb)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(chain.runtime.add, sandboxes))
    assert len({r["ips"][0]["address"] for r in results}) == 6
    keys = {wg_dump(sb)[0][1] for sb in sandboxes}
    assert len(keys) == 6
    for sb in sandboxes:
        pe = chain.endpoint(sb.name)
        assert pe is not None and pe["spec"]["podPublicKey"] == wg_dump(sb)[0][1]
        assert (
            pe["spec"]["podIpAddress"]
            == next(r["ips"][0]["address"].split("/")[0] for r in results if r["interfaces"][-1]["sandbox"] == sb.netns)
            + "/32"
        )
    assert "egwp" not in chain.node.ip("-o", "link")  # every temporary device was moved and renamed
    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(chain.runtime.delete, sandboxes)) == [[]] * 6
    assert all(chain.endpoint(sb.name) is None for sb in sandboxes)


def test_apiserver_unreachable_means_try_again_for_add_and_zero_for_del(
    control_plane: Any, k8s_namespace: str, netns_factory: Any, shim_bin: Path, sock_dir: Path, tmp_path: Path
) -> None:
    import yaml

    doc = yaml.safe_load(Path(control_plane.kubeconfig).read_text())
    for cluster in doc["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"  # nothing listens there
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(doc))
    dead.chmod(0o600)
    node = netns_factory("node")
    chain = start_chain(
        control_plane, k8s_namespace, node, netns_factory, shim_bin, sock_dir, tmp_path, kubeconfig=dead
    )
    sb = chain.pod("cut-off", sgc=None)  # not even annotated: the manager cannot know that
    with pytest.raises(CniFailure) as exc:
        chain.runtime.add(sb)
    assert exc.value.plugin == cniproto.PLUGIN_TYPE and exc.value.code == 11
    assert all(f.plugin == "ptp" for f in chain.runtime.delete(sb))  # ours: exit 0
    net = chain.runtime.network()
    ours = next(p for p in net["plugins"] if p["type"] == cniproto.PLUGIN_TYPE)
    with pytest.raises(CniFailure) as exc:
        chain.runtime._exec(
            cniproto.PLUGIN_TYPE, "STATUS", None, {**ours, "name": net["name"], "cniVersion": "1.1.0"}, {}
        )
    assert exc.value.code == 50


def test_manager_restart_leaves_running_pods_alone(chain: Chain) -> None:
    chain.sgc()
    sb = chain.pod("survivor")
    chain.runtime.add(sb)
    before = wg_dump(sb)
    pe = chain.endpoint("survivor")
    chain.stop_manager()  # SIGKILL
    assert "wg0" in pod_view(sb)["links"] and wg_dump(sb)[0][1] == before[0][1]  # tunnel untouched
    chain.start_manager()

    def serving() -> bool:
        try:  # the killed manager's socket file may still be there: refused until the new one binds
            return chain.runtime.rerun(sb, cniproto.PLUGIN_TYPE, "CHECK") is None
        except CniFailure as exc:
            if exc.code != 11:
                raise
            return False

    wait_for("cni-manager to serve again", serving, log=chain.log)
    after = chain.endpoint("survivor")
    assert after is not None and pe is not None and after["metadata"]["uid"] == pe["metadata"]["uid"]
    assert wg_dump(sb)[0][1] == before[0][1]
    assert chain.runtime.delete(sb) == []
    assert chain.endpoint("survivor") is None
