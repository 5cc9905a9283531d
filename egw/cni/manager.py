"""``egw cni-manager``: the per-node service behind the ``kube-egress-gateway-cni`` front end (spec §5.9).

Wiring only: installs the front end binary into the CNI bin dir (temp + rename, so a runtime exec never
sees a half-written file: libcni retries on "text file busy" but not on a truncated binary), keeps
``01-egressgateway.conflist`` in sync with the node's main configuration (level-triggered, every
``--conf-interval`` seconds), serves the unix socket (``egw.cni.server``) that runs every CNI request
through ``egw.cni.skel`` + ``egw.cni.plugin``, and sweeps PodEndpoints of gone pods at start and every
``--sweep-interval`` seconds. SIGTERM/SIGINT stop it; the conflist is removed on exit only with
``--uninstall`` (so a restart never leaves the node without a CNI configuration, and an uninstall never
leaves it pointing at a plugin whose manager is gone).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from egw.cni import conflist, plugin, podnet, skel
from egw.cni.conf import PodRef, parse_cni_args
from egw.cni.server import KeyedLocks, ShimServer
from egw.model import cniproto

log = logging.getLogger("egw.cni.manager")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=cniproto.DEFAULT_SOCKET, help="unix socket path (default: %(default)s)")
    p.add_argument("--cni-conf-dir", type=Path, default=Path("/etc/cni/net.d"))
    p.add_argument("--cni-conf-file", default=cniproto.CONFLIST_NAME)
    p.add_argument("--cni-bin-dir", type=Path, default=None, help="install the front end here (e.g. /opt/cni/bin)")
    p.add_argument("--plugin-binary", type=Path, default=None, help="the compiled front end to install")
    p.add_argument("--exception-cidrs", default="", help="comma-separated node-level exception CIDRs")
    p.add_argument("--node-name", default=os.environ.get("MY_NODE_NAME", ""))
    p.add_argument(
        "--node-netns",
        default=None,
        help="netns path where pod WireGuard devices are born (default: our own, i.e. the node's)",
    )
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--api-timeout", type=float, default=5.0, help="seconds per API call")
    p.add_argument("--conf-interval", type=float, default=1.0)
    p.add_argument("--sweep-interval", type=float, default=60.0)
    p.add_argument("--uninstall", action="store_true", help="remove the conflist when stopping")
    p.add_argument("--log-level", default="INFO")
    # Test-only knobs, hidden from --help.
    p.add_argument("--test-faults", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--socket-mode", type=lambda v: int(v, 8), default=0o600, help=argparse.SUPPRESS)
    p.add_argument("--allowed-uid", type=int, action="append", default=None, help=argparse.SUPPRESS)


def parse_exception_cidrs(text: str) -> list[str]:
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SystemExit(f"--exception-cidrs: {item!r} is not a CIDR") from None
        if str(net) not in out:
            out.append(str(net))
    return out


def install_binary(src: Path, bin_dir: Path, name: str = cniproto.PLUGIN_TYPE) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    dst = bin_dir / name
    if dst.exists() and dst.read_bytes() == src.read_bytes():
        return dst
    tmp = bin_dir / f".{name}.tmp{os.getpid()}"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o755)  # noqa: S103 - an executable the runtime (root) runs; not writable by others
    os.replace(tmp, dst)
    log.info("installed %s", dst)
    return dst


class Handler:
    """Socket request → skel.run(plugin), serialised per pod."""

    def __init__(self, plug: plugin.Plugin) -> None:
        self.plugin = plug
        self.locks = KeyedLocks()

    def __call__(self, req: cniproto.Request) -> cniproto.Response:
        key = ""
        try:
            args = parse_cni_args(req.env.get("CNI_ARGS", ""))
            key = PodRef(args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", "")).key
        except Exception:  # skel reports malformed CNI_ARGS with the right code
            key = ""
        if key and key != "/" and req.env.get("CNI_COMMAND") in ("ADD", "DEL", "CHECK"):
            with self.locks.hold(key):
                code, out = skel.run(req.env, req.stdin, self.plugin)
        else:
            code, out = skel.run(req.env, req.stdin, self.plugin)
        return cniproto.Response(code, out)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The Kubernetes client logs bodies at DEBUG; nothing it says about requests belongs in our logs.
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    excluded = parse_exception_cidrs(args.exception_cidrs)
    podnet.set_node_netns(args.node_netns)
    if args.cni_bin_dir and args.plugin_binary:
        install_binary(args.plugin_binary, args.cni_bin_dir)

    from egw.cni.cluster import KubeCluster
    from egw.k8s.client import Client

    client = Client.auto(args.kubeconfig, timeout=args.api_timeout, user_agent="egw-cni-manager")
    cluster = KubeCluster(client, args.node_name)
    plug = plugin.Plugin(cluster, [ipaddress.ip_network(c) for c in excluded], test_faults=args.test_faults)
    server = ShimServer(
        args.socket,
        Handler(plug),
        allowed_uids=frozenset(args.allowed_uid or [0]),
        socket_mode=args.socket_mode,
    ).start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    cluster.pods.wait_synced(timeout=10)
    next_sweep = time.monotonic()
    while not stop.is_set():
        try:
            conflist.sync(args.cni_conf_dir, excluded, str(args.socket), args.cni_conf_file)
        except OSError as exc:
            log.error("conflist sync failed: %s", exc)
        if time.monotonic() >= next_sweep and cluster.pods.has_synced:
            try:
                cluster.sweep()
            except Exception as exc:
                log.warning("PodEndpoint sweep failed: %s", exc)
            next_sweep = time.monotonic() + args.sweep_interval
        stop.wait(args.conf_interval)

    log.info("stopping")
    server.stop()
    cluster.stop()
    if args.uninstall:
        conflist.remove(args.cni_conf_dir, args.cni_conf_file)
        log.info("removed %s", args.cni_conf_dir / args.cni_conf_file)
    return 0
