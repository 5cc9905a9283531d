"""Shared by the pod-side tests: cni-manager as a process for a test "node" netns, a ptp-first chain, readers.

cni-manager runs on the host (so it reaches the API server on loopback) with ``--node-netns`` pointing at the
test's node netns: WireGuard devices are born there, so their UDP socket is the node's; the runtime stand-in
execs the chain in that netns too. Nothing is created in the host netns.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egw.cni import podnet
from egw.k8s import client as k8s
from egw.model import cniproto
from tests.cni.runtime import Runtime, Sandbox
from tests.fixtures.netns import die_with_parent, kill_and_reap, owner_env

NODE = "node-1"
DEBIAN_CNI = Path("/usr/lib/cni")
GW_PUB = base64.b64encode(bytes(range(1, 33))).decode()
EXCEPTIONS = "10.244.0.0/16,10.245.0.0/16,169.254.169.254/32"
SEED_MANGLE = [
    "-A PREROUTING -i eth0 -j MARK --set-xmark 0x2222/0xffffffff",
    "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
    "-A OUTPUT -m connmark --mark 0x2222 -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
]


def wait_for(what: str, ok: Any, timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.05)


@dataclass
class Chain:
    runtime: Runtime
    api: k8s.Client
    namespace: str
    node: Any  # tests.fixtures.netns.Netns
    make_ns: Any
    conf_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]
    node_name: str = NODE
    argv: tuple[str, ...] = ()

    def start_manager(self) -> None:
        """(Re)start cni-manager with the same arguments, appending to its log."""
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=owner_env(),
                preexec_fn=die_with_parent,
            )

    def stop_manager(self) -> None:
        if self.proc.poll() is None:
            kill_and_reap(self.proc.pid)
        self.proc.wait(timeout=10)

    def sgc(self, name: str = "gw", namespace: str | None = None, *, ready: bool = True, **spec: Any) -> None:
        ns = namespace or self.namespace
        body = {
            "metadata": {"name": name, "namespace": ns},
            "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True, **spec},
        }
        self.api.create(k8s.STATIC_GATEWAY_CONFIGURATIONS, body, ns)
        if ready:
            status = {
                "egressIpPrefix": "203.0.113.7/32",
                "gatewayServerProfile": {
                    "ip": "10.243.0.6",
                    "port": 6000,
                    "publicKey": GW_PUB,
                    "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "sgc-key"},
                },
            }
            self.api.patch_status(k8s.STATIC_GATEWAY_CONFIGURATIONS, name, {"status": status}, ns)

    def pod(self, name: str, sgc: str | None = "gw") -> Sandbox:
        ann = {cniproto.GATEWAY_ANNOTATION: sgc} if sgc else {}
        obj = self.api.create(
            k8s.PODS,
            {
                "metadata": {"name": name, "namespace": self.namespace, "annotations": ann},
                "spec": {"nodeName": self.node_name, "containers": [{"name": "c", "image": "registry.invalid/pause"}]},
            },
            self.namespace,
        )
        ns = self.make_ns(name[:20])
        return Sandbox(uuid.uuid4().hex, ns.path, self.namespace, name, obj["metadata"]["uid"])

    def endpoint(self, name: str) -> dict[str, Any] | None:
        return self.api.get_or_none(k8s.POD_ENDPOINTS, name, self.namespace)


def start_chain(
    control_plane: Any,
    namespace: str,
    node: Any,
    netns_factory: Any,
    shim_bin: Path,
    sock_dir: Path,
    tmp_path: Path,
    node_name: str = NODE,
    kubeconfig: Path | None = None,
    wait: bool = True,
) -> Chain:
    """cni-manager for ``node`` (a test netns) + a runtime whose main plugin is Debian ptp/host-local."""
    conf_dir, bin_dir = tmp_path / "net.d", tmp_path / "bin"
    conf_dir.mkdir()
    bin_dir.mkdir()
    for p in ("ptp", "host-local", "loopback"):
        (bin_dir / p).symlink_to(DEBIAN_CNI / p)
    main = {
        "cniVersion": "1.0.0",
        "name": "egwnet",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.244.0.0/24",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(tmp_path / "ipam"),
                },
            }
        ],
    }
    (conf_dir / "10-ptp.conflist").write_text(json.dumps(main))
    sock = sock_dir / "run" / "cni.sock"
    log = tmp_path / "cni-manager.log"
    argv = [sys.executable, "-m", "egw", "cni-manager", "--socket", str(sock), "--cni-conf-dir", str(conf_dir)]
    argv += ["--cni-bin-dir", str(bin_dir), "--plugin-binary", str(shim_bin), "--node-name", node_name]
    argv += [
        "--kubeconfig",
        str(kubeconfig or control_plane.kubeconfig),
        "--exception-cidrs",
        EXCEPTIONS,
        "--test-faults",
    ]
    argv += ["--conf-interval", "0.1", "--sweep-interval", "1", "--log-level", "DEBUG", "--node-netns", node.path]
    api = k8s.Client.from_kubeconfig(control_plane.kubeconfig, timeout=10)
    netns_factory.add_finalizer(api.close)
    chain = Chain(
        runtime=Runtime(conf_dir, bin_dir, node.path),
        api=api,
        namespace=namespace,
        node=node,
        make_ns=netns_factory,
        conf_dir=conf_dir,
        log=log,
        proc=None,  # type: ignore[arg-type]
        node_name=node_name,
        argv=tuple(argv),
    )
    # On the host (the API server listens on the host's loopback); it only touches the node and pod netns.
    chain.start_manager()
    netns_factory.add_finalizer(chain.stop_manager)
    if wait:
        ours = conf_dir / cniproto.CONFLIST_NAME
        wait_for("cni-manager to write its conflist and socket", lambda: ours.exists() and sock.exists(), log=log)
    return chain


def pod_view(sb: Sandbox) -> dict[str, Any]:
    """What the troubleshooting guide reads in the pod netns."""
    ns = ["ip", "netns", "exec", os.path.basename(sb.netns)]

    def run(*a: str, check: bool = True) -> str:
        return subprocess.run([*ns, *a], capture_output=True, text=True, check=check).stdout

    links = {li["ifname"]: li for li in json.loads(run("ip", "-j", "addr"))}
    return {
        "links": links,
        # ptp gives its host route a preferred source; the seed's azure-vnet does not. Not ours: ignored.
        "routes": sorted(
            line.strip().removesuffix(" src 10.244.0.2") for line in run("ip", "-4", "route").splitlines()
        ),
        "rules": run("ip", "rule"),
        "mangle": [line for line in run("iptables-save", "-t", "mangle").splitlines() if line.startswith("-A")],
        "rp_filter": run(
            "sysctl", "-n", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.eth0.rp_filter", check=False
        ).split(),
    }


def wg_dump(sb: Sandbox) -> list[list[str]]:
    name = podnet.temp_link_name(sb.container_id)
    out = subprocess.run(["wg", "show", name, "dump"], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def link_local(link: dict[str, Any]) -> str:
    return next(a["local"] for a in link["addr_info"] if a["family"] == "inet6" and a["scope"] == "link")
